import uuid
from pathlib import Path

import pytest

from infra import broker
from infra.broker import BundledKafka, kafka_version, new_cluster_id
from infra.settings import Settings
from infra.topics import topic_plan


def test_version_is_pinned_in_the_pom() -> None:
    assert kafka_version().startswith("4.")


def test_server_properties_are_kraft_combined_on_loopback(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path, broker={"port": 19092, "controller_port": 19093}
    )
    props = dict(
        line.split("=", 1)
        for line in BundledKafka(settings).server_properties().splitlines()
        if line
    )
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert props["log.dirs"] == str(tmp_path.resolve() / "kafka" / "data")
    assert props["auto.create.topics.enable"] == "false"


def test_topic_plan_uses_settings_and_long_retention_for_deadletter() -> None:
    settings = Settings(_env_file=None, kafka={"partitions": 6, "replication_factor": 3})
    plans = {plan.name: plan for plan in topic_plan(settings.kafka)}
    assert plans["units.temizlik"].partitions == 6
    assert plans["units.temizlik"].replication_factor == 3
    assert int(plans["intake.deadletter"].configs["retention.ms"]) > int(
        plans["intake.raw.api"].configs["retention.ms"]
    )


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xfb… encodes to "-…" in URL-safe base64; the storage tool would read it as an option.
    draws = iter([uuid.UUID(bytes=b"\xfb" + b"\x00" * 15), uuid.UUID(int=1)])
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: next(draws))
    cluster_id = new_cluster_id()
    assert not cluster_id.startswith("-") and len(cluster_id) == 22
