"""The broker warm-up loop of ``intake bench``: when it stops, and what it reports."""

from __future__ import annotations

import asyncio

from infra.bench.measure import warm_broker


class _Broker:
    """A broker whose JIT compilers use ``shares[i]`` of a core during pass ``i`` (1 s each)."""

    def __init__(self, shares: list[float | None]) -> None:
        self.shares = shares
        self.now = 0.0
        self.jit = 0.0
        self.passes = 0

    async def one_pass(self) -> None:
        share = self.shares[min(self.passes, len(self.shares) - 1)]
        self.jit += share or 0.0
        self.now += 1.0
        self.passes += 1

    def jit_s(self) -> float | None:
        share = self.shares[min(self.passes, len(self.shares) - 1)]
        return None if share is None else self.jit

    def clock(self) -> float:
        return self.now


def test_passes_run_until_the_compilers_are_quiet() -> None:
    broker = _Broker([0.6, 0.3, 0.1, 0.02, 0.5])
    done = asyncio.run(warm_broker(broker.one_pass, broker.jit_s, budget_s=60, clock=broker.clock))
    assert broker.passes == 4 and done.passes == 4
    assert done.seconds == 4.0
    assert done.jit_share is not None and abs(done.jit_share - 0.02) < 1e-9


def test_the_budget_ends_a_warm_up_that_never_quietens() -> None:
    broker = _Broker([0.4])
    done = asyncio.run(warm_broker(broker.one_pass, broker.jit_s, budget_s=5, clock=broker.clock))
    assert done.passes == 5 and done.seconds == 5.0
    assert done.jit_share is not None and abs(done.jit_share - 0.4) < 1e-9
    assert done.to_dict() == {"passes": 5, "seconds": 5.0, "jit_share": 0.4}


def test_unreadable_compilers_give_one_pass_and_no_share() -> None:
    broker = _Broker([None])
    done = asyncio.run(warm_broker(broker.one_pass, broker.jit_s, budget_s=60, clock=broker.clock))
    assert done.passes == 1 and done.jit_share is None
    assert done.to_dict()["jit_share"] is None
