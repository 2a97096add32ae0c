"""RabbitMQ connection parameters and the declaration of Voxmill's exchanges and queues."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from contract.settings import Settings
from messaging.types import Topology

log = logging.getLogger(__name__)


def topology_for(settings: Settings) -> Topology:
    """The queue and exchange names for ``settings.queue_prefix``."""
    return Topology(settings.queue_prefix)


def connection_parameters(settings: Settings, name: str) -> pika.URLParameters:
    """Connection parameters from ``settings.broker_url`` with Voxmill's safety settings.

    Args:
        settings: Source of the URL, heartbeat and blocked-connection timeout.
        name: Shown as the connection name in RabbitMQ (``rabbitmqctl list_connections``), so an
            operator can tell workers from API replicas.
    """
    params = pika.URLParameters(settings.broker_url)
    params.heartbeat = settings.heartbeat_s
    # A broker under a memory or disk alarm blocks publishers; give up instead of hanging forever.
    params.blocked_connection_timeout = settings.blocked_timeout_s
    params.connection_attempts = 1  # our own loops do the back-off
    params.socket_timeout = 10
    params.client_properties = {
        "connection_name": f"{name} {socket.gethostname()}:{os.getpid()}",
        "product": "voxmill",
    }
    return params


def _quorum_args(topology: Topology, dead_queue: str, delivery_limit: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        # RabbitMQ before 4.0 has no default limit: a message that crashes every consumer would be
        # redelivered forever. With the limit it is dead-lettered instead.
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": topology.dead_letter_exchange,
        "x-dead-letter-routing-key": dead_queue,
    }


def declare_topology(channel: BlockingChannel, settings: Settings) -> Topology:
    """Declare every exchange and durable queue (idempotent; safe from every process at start-up).

    Raises pika's ``ChannelClosedByBroker`` (406 PRECONDITION_FAILED) when a queue already exists
    with other arguments, for example after ``delivery_limit`` was changed: such a queue must be
    deleted or migrated by an operator.

    Args:
        channel: An open channel; it is left open.
        settings: ``queue_prefix`` names everything; the delivery limits come from its
            :meth:`~contract.settings.Settings.retry_policy`.

    Returns:
        The names that were declared.
    """
    topology = topology_for(settings)
    policy = settings.retry_policy()
    channel.exchange_declare(topology.dead_letter_exchange, "direct", durable=True)
    channel.exchange_declare(topology.events, "fanout", durable=True)
    for dead in (topology.tasks_dead, topology.results_dead):
        channel.queue_declare(dead, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(dead, topology.dead_letter_exchange, routing_key=dead)
    channel.queue_declare(
        topology.tasks,
        durable=True,
        arguments=_quorum_args(topology, topology.tasks_dead, policy.task_delivery_limit),
    )
    channel.queue_declare(
        topology.tasks_interactive,
        durable=True,
        arguments=_quorum_args(topology, topology.tasks_dead, policy.task_delivery_limit),
    )
    channel.queue_declare(
        topology.results,
        durable=True,
        arguments=_quorum_args(topology, topology.results_dead, policy.result_delivery_limit),
    )
    log.debug("declared topology %s", topology.prefix)
    return topology


def bind_event_queue(channel: BlockingChannel, settings: Settings) -> str:
    """Declare a server-named exclusive, auto-delete queue bound to the events exchange.

    One per API replica: it lives as long as the replica's connection, so a replica that goes away
    leaves nothing behind.

    Returns:
        The queue's name, to consume from on the same connection.
    """
    topology = topology_for(settings)
    channel.exchange_declare(topology.events, "fanout", durable=True)
    ok = channel.queue_declare("", exclusive=True, auto_delete=True)
    queue = str(ok.method.queue)
    channel.queue_bind(queue, topology.events)
    return queue


def delete_topology(channel: BlockingChannel, settings: Settings) -> None:
    """Delete every queue and exchange of ``settings.queue_prefix`` (tests and operators only)."""
    topology = topology_for(settings)
    for queue in topology.queues():
        channel.queue_delete(queue)
    for exchange in topology.exchanges():
        channel.exchange_delete(exchange)
