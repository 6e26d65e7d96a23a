"""Where cases end up: the case store, the blob store, (later) collages and reply senders.

Nothing here imports Faust; agents in ``streams`` call these plain objects.
"""
