"""Session fixtures: one real Apache Kafka (the bundled one) on free loopback ports."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.postgres import postgres_server, postgres_url
from tests.integration.services import ProductEnv, free_port, need

__all__ = ["kafka", "postgres_server", "postgres_url", "product"]


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductEnv]:
    """The bundled Kafka, started for the test session, with every topic created."""
    need(shutil.which("java") is not None, "Java is not installed (the broker needs it)")
    need(shutil.which("mvn") is not None, "Maven is not installed (it fetches the broker)")
    from infra.broker import BundledKafka
    from infra.topics import create_topics

    root = tmp_path_factory.mktemp("product")
    port, controller = free_port(), free_port()
    env = ProductEnv(
        root=root,
        bootstrap=f"127.0.0.1:{port}",
        variables={
            "INTAKE_ENV": "test",
            "INTAKE_DATA_DIR": str(root / "var"),
            "INTAKE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
            "INTAKE_KAFKA__PARTITIONS": "3",
            "INTAKE_BROKER__PORT": str(port),
            "INTAKE_BROKER__CONTROLLER_PORT": str(controller),
            "INTAKE_BROKER__HOME": str(root / "kafka"),
            "INTAKE_WORKER__SESSION_TIMEOUT_S": "8",
            "INTAKE_WORKER__COMMIT_INTERVAL_S": "1.0",
            "INTAKE_WORKER__RETRY_BACKOFF_S": "0.05",
        },
    )
    settings = env.settings()
    broker = BundledKafka(settings)
    broker.start()
    try:
        asyncio.run(create_topics(settings.kafka))
        yield env
    finally:
        env.stop_all()
        broker.stop()


@pytest.fixture
def product(kafka: ProductEnv, tmp_path: Path) -> Iterator[tuple[ProductEnv, Path]]:
    """The session broker plus a fresh data directory (case store, blobs) for this test."""
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    try:
        yield kafka, data_dir
    finally:
        kafka.stop_all()
