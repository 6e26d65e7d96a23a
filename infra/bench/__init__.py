"""``intake bench``: throughput, CPU and latency of the pipeline against a plain Kafka baseline.

Three systems under test, each its own process so that its CPU can be read from ``/proc``:
a raw aiokafka consume → produce loop (``passthrough``), a Faust agent that only forwards
(``forward``) and the real worker (``pipeline``). ``generate`` makes the Turkish messages,
``measure`` times them, ``report`` prints the result, ``cli`` runs it all.
"""

from __future__ import annotations

from infra.errors import InfraError

__all__ = ["BenchError"]


class BenchError(InfraError):
    """The benchmark could not run or a system under test misbehaved."""
