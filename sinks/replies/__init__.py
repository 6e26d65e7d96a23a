"""Replies to citizens on the channel they used: WhatsApp (Twilio), e-mail (SMTP), X.

Each sender (``whatsapp``, ``email``, ``twitter``) turns a :class:`~schemas.work.ReplyRequest`
into a provider call; :func:`~sinks.replies.retry.send_with_retry` retries what can be
retried and :func:`~sinks.replies.retry.outcome_event` records how it ended on the case;
:mod:`~sinks.replies.links` signs the collage links Twilio fetches and serves them;
:func:`~sinks.replies.wiring.build_senders` builds what the settings configure. Phone
callbacks are not here: operators make them.

Import from the modules: this package is imported by the settings tree (``settings``), so
it must not import the senders, which import the settings tree.
"""
