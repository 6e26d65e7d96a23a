"""Fixes to faust-streaming 0.15 that at-least-once delivery in the worker depends on.

``apply_faust_fixes()`` is called by ``streams.app.create_app``; it patches faust's classes once per
process and refuses any faust outside 0.15, so that an upgrade makes someone look again.

**Events dropped after table recovery.** When the worker owns a table whose changelog has
records, faust's ``Recovery`` starts the Fetcher (flow active) to read the changelog, and then, in
``on_recovery_completed``, resumes the stream partitions *before* it awaits the seek to the
committed offsets. Records fetched during that await are delivered into the agents' queues; the
``app.flow_control.resume()`` that follows clears every such queue (``FlowControlEvent.resume``
clears the queues created with ``clear_on_resume=True``). The events that were still queued are
never processed and never acknowledged, and ``Consumer._new_offset`` then commits past a missing
offset at the head of a partition when it is a single one (``min(acked) - committed > 1``,
faust-streaming issue #606): the event is lost without an error. Here the stream partitions are
resumed after the seek, in the same step as the flow (no ``await`` in between), so nothing can be
queued before the queues are cleared.

**Records of paused partitions fetched and discarded.** faust hands its live set of active
partitions to aiokafka's ``fetched_records``, which waits for data on the consumer thread and reads
the set again when data arrives; an empty set there means *every* partition. If the set empties
during that wait (recovery pauses the changelog partitions while the stream partitions are still
paused), aiokafka returns records of the paused stream partitions and moves its position past them,
and faust's ``getmany`` discards them as not active. The seek that follows does not move a partition
without a committed offset back, so those records are never processed. Resuming the streams after
the seek (above) keeps the set empty for the whole seek, which would make this frequent; here
aiokafka gets a copy of the set taken when the fetch starts.

**A commit past an offset nobody acknowledged** is logged as a warning (topic, partition, offset),
so that a loss of this kind is no longer silent. The commit itself is unchanged: faust lets one
missing head offset through on purpose (a compacted offset or a transaction marker).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import faust
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer, RecordMap, ThreadDelegateConsumer
from faust.types import TP

__all__ = ["apply_faust_fixes"]

log = logging.getLogger(__name__)

_SUPPORTED = "0.15."
_applied = False
_faust_on_recovery_completed = Recovery.on_recovery_completed
_faust_new_offset = Consumer._new_offset
_faust_getmany = ThreadDelegateConsumer._getmany


def apply_faust_fixes() -> None:
    """Patch faust once per process (idempotent); ``RuntimeError`` for a faust other than 0.15."""
    global _applied
    if _applied:
        return
    if not faust.__version__.startswith(_SUPPORTED):
        raise RuntimeError(
            f"streams.faust_fixes was written for faust-streaming {_SUPPORTED}x, found "
            f"{faust.__version__}: check whether the fixes are still needed and still fit"
        )
    Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]
    Consumer._new_offset = _new_offset_reporting_unacked  # type: ignore[method-assign]
    ThreadDelegateConsumer._getmany = _getmany_from_a_copy  # type: ignore[method-assign]
    _applied = True


async def _on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
    """faust 0.15.3's ``Recovery.on_recovery_completed`` with the stream partitions resumed after
    the seek, right before the flow, instead of before the seek."""
    app = cast(Any, self.app)
    consumer = app.consumer
    self.log.info("Restore complete!")
    await app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callbacks = [
        asyncio.ensure_future(
            table.on_recovery_completed(
                self.actives_for_table[table], self.standbys_for_table[table]
            )
        )
        for table in self.tables.values()
    ]
    if callbacks:
        await asyncio.wait(callbacks)
    assignment = consumer.assignment()
    if app.consumer_generation_id != generation_id:
        self.log.warning(
            "Recovery rebalancing again app id %s param %s",
            app.consumer_generation_id,
            generation_id,
        )
        return
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
    # No await until the flow is resumed: resume() clears the queues, so nothing of the stream
    # partitions may have been delivered into them yet.
    consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    self.completed.set()
    app.flow_control.resume()
    consumer.resume_flow()
    await app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    app.on_rebalance_end()
    self.log.info("Worker ready")


def _new_offset_reporting_unacked(self: Consumer, tp: TP) -> int | None:
    """faust's ``Consumer._new_offset``, warning when the offset it returns passes over the
    committed offset although no stream acknowledged that one."""
    committed = self._committed_offset[tp]
    head_acked = committed is None or committed in self._acked_index[tp]
    offset = cast(int | None, _faust_new_offset(self, tp))
    if not head_acked and offset is not None and committed is not None and offset > committed:
        log.warning(
            "committing %s[%d] at %d past offset %d, which no stream acknowledged",
            tp.topic,
            tp.partition,
            offset,
            committed,
        )
    return offset


async def _getmany_from_a_copy(
    self: ThreadDelegateConsumer, active_partitions: set[TP] | None, timeout: float
) -> RecordMap:
    """faust's ``ThreadDelegateConsumer._getmany`` with a copy of the active partitions, so that
    pausing partitions while aiokafka waits cannot turn the request into one for all of them."""
    partitions = None if active_partitions is None else set(active_partitions)
    return cast(RecordMap, await _faust_getmany(self, partitions, timeout))
