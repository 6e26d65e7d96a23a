"""``intake bench --stages``: the pipeline's logic timed stage by stage, without Kafka."""

from __future__ import annotations

import json

import pytest

from infra.bench import BenchError
from infra.bench.generate import generate
from infra.bench.stages import STAGES, measure_stages
from infra.cli import main
from infra.settings import Settings


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


def test_every_stage_is_timed_and_the_verdicts_account_for_every_clustered_report(
    settings: Settings,
) -> None:
    report = measure_stages(settings, 600, exact_share=0.1, near_share=0.1, warm_up=0)
    assert list(report.cpu_us) == list(STAGES)
    assert all(us > 0 for us in report.cpu_us.values()), report.cpu_us
    assert report.total_us == pytest.approx(sum(report.cpu_us.values()))
    # Each exact re-send of a clustered original is dropped as a duplicate; a re-send of a
    # report that skips clustering (an emergency, a call resolved on the line) is not seen.
    exact = sum(1 for e in generate(600, run_id="stages", exact_share=0.1) if e.kind == "exact")
    assert 0 < report.decisions["duplicate"] <= exact
    assert report.decisions["new"] > report.decisions.get("cluster", 0) > 0
    clustered = sum(report.decisions.values())
    assert clustered <= 600
    # Every event writes its message and one case or cluster record; a new case adds at
    # least its routed event and a work item (or a forward, or a review item).
    assert report.records_per_event >= 2 + 2 * report.decisions["new"] / 600
    assert report.window_reports == clustered - report.decisions["duplicate"]


def test_the_warm_up_fills_the_windows_but_is_not_counted(settings: Settings) -> None:
    cold = measure_stages(settings, 300, warm_up=0)
    warm = measure_stages(settings, 300, warm_up=900)
    assert sum(warm.decisions.values()) == sum(cold.decisions.values())  # the same 300 events
    assert warm.window_reports > cold.window_reports + 600


def test_bad_counts_get_a_clear_error(settings: Settings) -> None:
    with pytest.raises(BenchError, match="events ≥ 1"):
        measure_stages(settings, 0)
    with pytest.raises(BenchError, match="warm-up ≥ 0"):
        measure_stages(settings, 10, warm_up=-1)


def test_the_command_prints_json_with_a_total(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--stages", "--events", "200", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    cpu = doc["cpu_us_per_event"]
    assert set(cpu) == {*STAGES, "total"}
    assert cpu["total"] == pytest.approx(sum(cpu[s] for s in STAGES))
    assert doc["events"] == 200 and doc["warm_up"] == 200
