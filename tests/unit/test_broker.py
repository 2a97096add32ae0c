"""Broker pieces that need no RabbitMQ: names, declared arguments, connection settings, back-off."""

from __future__ import annotations

import time
from typing import Any

import pytest

from contract.retry import Backoff, RetryPolicy
from contract.settings import Settings
from messaging.consumer import Consumer
from messaging.publisher import Publisher
from messaging.topology import connection_parameters, declare_topology, topology_for
from messaging.types import Outcome, PublishError


class RecordingChannel:
    def __init__(self) -> None:
        self.queues: dict[str, dict[str, Any]] = {}
        self.exchanges: dict[str, str] = {}
        self.bindings: list[tuple[str, str, str | None]] = []

    def exchange_declare(self, name: str, kind: str, durable: bool = False) -> None:
        assert durable
        self.exchanges[name] = kind

    def queue_declare(
        self, name: str, durable: bool = False, arguments: dict[str, Any] | None = None
    ) -> None:
        assert durable
        self.queues[name] = arguments or {}

    def queue_bind(self, queue: str, exchange: str, routing_key: str | None = None) -> None:
        self.bindings.append((queue, exchange, routing_key))


def test_declares_quorum_queues_with_limits_and_dead_letters() -> None:
    channel = RecordingChannel()
    settings = Settings(queue_prefix="vx", delivery_limit=4)

    topology = declare_topology(channel, settings)

    assert topology == topology_for(settings)
    assert channel.exchanges == {"vx.dlx": "direct", "vx.events": "fanout"}
    assert channel.queues["vx.tasks"] == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 4,
        "x-dead-letter-exchange": "vx.dlx",
        "x-dead-letter-routing-key": "vx.tasks.dead",
    }
    assert channel.queues["vx.results"]["x-delivery-limit"] == RetryPolicy().result_delivery_limit
    assert channel.queues["vx.results"]["x-dead-letter-routing-key"] == "vx.results.dead"
    assert channel.queues["vx.tasks.dead"] == {"x-queue-type": "quorum"}
    assert ("vx.tasks.dead", "vx.dlx", "vx.tasks.dead") in channel.bindings
    assert ("vx.results.dead", "vx.dlx", "vx.results.dead") in channel.bindings


def test_connection_parameters_carry_heartbeat_timeout_and_name() -> None:
    settings = Settings(
        broker_url="amqp://u:p@rabbit:5673/vh", heartbeat_s=7, blocked_timeout_s=12.5
    )
    params = connection_parameters(settings, "voxmill-worker")
    assert (params.host, params.port, params.virtual_host) == ("rabbit", 5673, "vh")
    assert params.heartbeat == 7
    assert params.blocked_connection_timeout == 12.5
    assert params.client_properties is not None
    assert params.client_properties["connection_name"].startswith("voxmill-worker ")


def unreachable() -> Settings:
    # Port 1 on loopback refuses connections at once: RabbitMQ is "down".
    return Settings(broker_url="amqp://guest:guest@127.0.0.1:1/%2F", queue_prefix="down")


def test_publisher_gives_up_with_a_clear_error_when_rabbitmq_is_down() -> None:
    publisher = Publisher(unreachable(), policy=RetryPolicy(publish_retry_for_s=0.3))
    started = time.monotonic()
    with pytest.raises(PublishError, match=r"127\.0\.0\.1:1 is unreachable.*VOXMILL_BROKER_URL"):
        publisher.publish("down.tasks", b"{}")
    assert time.monotonic() - started < 5
    publisher.close()
    with pytest.raises(PublishError, match="closed"):
        publisher.publish("down.tasks", b"{}")


def test_consumer_keeps_retrying_while_rabbitmq_is_down_and_stops_cleanly() -> None:
    consumer = Consumer(
        unreachable(),
        "down.tasks",
        lambda d: Outcome.ACK,
        policy=RetryPolicy(reconnect_backoff=Backoff(0.05, 1.0)),
    )
    consumer.start()
    assert not consumer.wait_connected(0.3)
    consumer.stop()
    assert consumer.join(5)
    assert consumer.connections == 0
