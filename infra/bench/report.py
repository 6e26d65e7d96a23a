"""The benchmark's result: medians over rounds, ratios to the passthrough, the targets.

``summarize`` builds the machine-readable summary (what ``--json`` prints); ``render_table``
shows the same for a person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import median
from typing import Any

from infra.bench.measure import Latency, Throughput

__all__ = ["TARGETS", "RoundResult", "render_table", "summarize"]

#: The issue's targets on a 2-core machine: (system, metric, comparison, value, label).
TARGETS: tuple[tuple[str, str, str, float, str], ...] = (
    ("pipeline", "events_per_s", ">=", 2000.0, "full pipeline events/s per worker"),
    ("forward", "ratio_to_passthrough", ">=", 0.4, "forwarding agent / passthrough"),
    ("pipeline", "latency_p99_ms", "<=", 60.0, "full pipeline end-to-end p99 ms"),
)
_LATENCY_TARGET_RATE = 50.0


@dataclass(frozen=True)
class RoundResult:
    """One system measured in one round."""

    system: str
    round: int
    throughput: Throughput
    latency: Latency


def _system(rounds: Sequence[RoundResult]) -> dict[str, Any]:
    recorder = [
        r.throughput.recorder_cpu_us_per_event
        for r in rounds
        if r.throughput.recorder_cpu_us_per_event is not None
    ]
    # The main figure stays the worker's own CPU; the recorder's comes beside it.
    extra = {"recorder_cpu_us_per_event": median(recorder)} if recorder else {}
    return {
        "events_per_s": median(r.throughput.events_per_s for r in rounds),
        "cpu_us_per_event": median(r.throughput.cpu_us_per_event for r in rounds),
        **extra,
        "latency_p50_ms": median(r.latency.p50_ms for r in rounds),
        "latency_p99_ms": median(r.latency.p99_ms for r in rounds),
        "dead_letters": sum(r.throughput.dead_letters + r.latency.dead_letters for r in rounds),
        "rounds": [
            {"round": r.round, **asdict(r.throughput), "latency": asdict(r.latency)} for r in rounds
        ],
    }


def _targets(systems: Mapping[str, Mapping[str, Any]], rate: float) -> list[dict[str, Any]]:
    out = []
    for system, metric, op, bound, label in TARGETS:
        if system not in systems or metric not in systems[system]:
            continue
        value = float(systems[system][metric])
        met = value >= bound if op == ">=" else value <= bound
        entry: dict[str, Any] = {"target": label, "bound": f"{op} {bound:g}", "value": value}
        entry["met"] = met
        if metric.startswith("latency") and rate != _LATENCY_TARGET_RATE:
            entry["note"] = f"measured at {rate:g}/s; the target is stated at 50/s"
        out.append(entry)
    return out


def summarize(results: Sequence[RoundResult], run: Mapping[str, Any]) -> dict[str, Any]:
    """Medians per system (in the order measured), ratios to the passthrough, targets."""
    names = list(dict.fromkeys(r.system for r in results))
    systems = {name: _system([r for r in results if r.system == name]) for name in names}
    base = systems.get("passthrough")
    if base is not None:
        for entry in systems.values():
            entry["ratio_to_passthrough"] = entry["events_per_s"] / base["events_per_s"]
            entry["added_latency_p99_ms"] = entry["latency_p99_ms"] - base["latency_p99_ms"]
    return {"run": dict(run), "systems": systems, "targets": _targets(systems, run["rate"])}


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def render_table(summary: Mapping[str, Any]) -> str:
    """The summary as a small text table, targets below it."""
    run = summary["run"]
    broker = "bundled, started for the run" if run["bundled_broker"] else "configured"
    warmed = run.get("broker_warm_up")
    if warmed:
        broker += f", warmed {warmed['seconds']:g}s"
    lines = [
        f"intake bench {run['run_id']}: {run['rounds']} interleaved round(s), "
        f"{run['events']:,} events per throughput run, latency at {run['rate']:g}/s for "
        f"{run['duration_s']:g}s",
        f"broker {run['bootstrap']} ({broker}), {run['partitions']} partitions; "
        f"{run['cpus']} CPUs, load {run['loadavg_before'][0]:.2f} before, "
        f"{run['loadavg_after'][0]:.2f} after",
        "",
        f"{'system':<12} {'events/s':>10} {'× passthru':>11} {'CPU µs/event':>13} "
        f"{'recorder µs/event':>18} {'p50 ms':>8} {'p99 ms':>8}",
    ]
    for name, entry in summary["systems"].items():
        ratio = entry.get("ratio_to_passthrough")
        recorder = entry.get("recorder_cpu_us_per_event")
        lines.append(
            f"{name:<12} {_num(entry['events_per_s']):>10} "
            f"{(f'{ratio:.2f}' if ratio is not None else '-'):>11} "
            f"{_num(entry['cpu_us_per_event']):>13} "
            f"{(_num(recorder) if recorder is not None else '-'):>18} "
            f"{_num(entry['latency_p50_ms']):>8} {_num(entry['latency_p99_ms']):>8}"
        )
    if summary["targets"]:
        lines.append("")
    for target in summary["targets"]:
        mark = "met" if target["met"] else "NOT met"
        note = f" ({target['note']})" if "note" in target else ""
        lines.append(
            f"target {target['target']} {target['bound']}: {_num(target['value'])} {mark}{note}"
        )
    return "\n".join(lines)
