"""The worker's Faust configuration: at-least-once, and the measured CPU savings in place."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from infra.settings import Settings
from streams.app import create_app
from streams.faust_tuning import LeanMonitor, use_uvloop


def test_worker_app_is_at_least_once_with_lingering_sends_and_a_lean_monitor() -> None:
    settings = Settings(
        _env_file=None, worker={"producer_linger_s": 0.01, "producer_max_batch_bytes": 300_000}
    )
    app = create_app(settings)
    assert app.conf.processing_guarantee.value == "at_least_once"
    assert app.conf.producer_acks == -1
    assert app.conf.producer_linger == 0.01
    assert app.conf.producer_max_batch_size == 300_000
    assert Settings(_env_file=None).worker.producer_max_batch_bytes == 256 * 1024
    assert isinstance(app.monitor, LeanMonitor)
    # The lean monitor keeps no per-event state: the hooks the stream calls return nothing.
    assert app.monitor.on_stream_event_in(None, 0, None, None) is None
    assert app.monitor.messages_received_total == 0


def test_uvloop_policy_is_installed_for_new_loops() -> None:
    before = asyncio.get_event_loop_policy()
    try:
        assert use_uvloop() is True
        loop = asyncio.new_event_loop()
        try:
            assert type(loop).__module__.startswith("uvloop")
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(before)


@pytest.mark.parametrize(
    ("protocol", "sasl", "expected"),
    [
        ("PLAINTEXT", False, "PLAINTEXT"),
        ("SASL_PLAINTEXT", True, "SASL_PLAINTEXT"),
        ("SSL", False, "SSL"),
        ("SASL_SSL", True, "SASL_SSL"),
    ],
)
def test_every_kafka_client_reaches_a_tls_broker_over_verified_tls(
    protocol: str, sasl: bool, expected: str
) -> None:
    kafka: dict[str, Any] = {"security_protocol": protocol}
    if sasl:
        kafka |= {"sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "u", "sasl_password": "p"}
    settings = Settings(_env_file=None, kafka=kafka)
    tls = protocol.endswith("SSL")
    # the worker (Faust builds its aiokafka clients from the app's credentials)
    auth = credentials_to_aiokafka_auth(create_app(settings).conf.broker_credentials)
    assert auth.get("security_protocol") == expected
    # every other client (connectors, recorder, outbound, admin, bench)
    options = settings.kafka.client_options()
    assert options["security_protocol"] == protocol
    for context in (auth.get("ssl_context"), options.get("ssl_context")):
        if not tls:
            assert context is None
            continue
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
