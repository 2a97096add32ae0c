"""``voxmill worker``: consume segment tasks, synthesize them, publish the results.

At-least-once: a task is acked only after its result is confirmed by RabbitMQ. A worker that dies in
between leaves the task to be redelivered and the result may be published twice; the API's result
consumer is idempotent on ``task_id`` / ``segment_id``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from pydantic import ValidationError

from contract.messages import EventMessage, MessageError, ResultMessage, TaskMessage
from contract.settings import Settings, get_settings
from messaging.consumer import Consumer
from messaging.publisher import Publisher
from messaging.types import Delivery, Handler, MessagePublisher, Outcome, PublishError, Topology
from synthesis.base import Synthesizer, TransientSynthesisError, VoiceServerAuthError
from synthesis.torchserve import TorchServeSynthesizer
from worker.breaker import VoiceBreaker
from worker.control import StoppedTasks
from worker.health import HealthServer
from worker.task import RetryAbandoned, process_task, worker_name

log = logging.getLogger(__name__)


class _ShuttingDown(RetryAbandoned):
    """Raised out of a retry back-off when the worker is asked to stop."""


def make_task_handler(
    settings: Settings,
    synthesizer: Synthesizer,
    publisher: MessagePublisher,
    *,
    stopping: threading.Event | None = None,
    worker: str | None = None,
    breaker: VoiceBreaker | None = None,
    stopped: StoppedTasks | None = None,
) -> Handler:
    """The handler for ``<prefix>.tasks``, for the RabbitMQ and the in-process consumer alike.

    - An invalid body is rejected to the dead-letter queue (never retried).
    - An unavailable voice server delays the task (``RetryPolicy.synthesis_budget_s``; with a
      ``breaker`` the worker stops taking tasks meanwhile); past the budget it is answered
      ``failed``.
    - A task whose other transient failures outlast the retries is requeued so another worker may
      succeed; on its last delivery before the queue's limit it is answered with a ``failed``
      result instead, so the segment ends with its error and the conversion still completes.
    - A refused key is requeued (the worker's problem, never the segment's).
    - Otherwise the result (``done`` or ``failed``) is published with confirms and only then is
      the task acked: the result records the outcome, so the dead-letter queue keeps only tasks
      nobody answered (which the API's dead-letter consumer marks failed).

    Args:
        settings: Their :meth:`~contract.settings.Settings.retry_policy` says how often to retry
            and on which delivery a task is answered ``failed``.
        synthesizer: Where the audio comes from.
        publisher: Where the results go.
        stopping: Set on shutdown; a task waiting out a retry back-off is requeued at once.
        worker: Name recorded in results (default ``hostname-pid``).
        breaker: The worker's circuit breaker on its voice server (``None``: none).
        stopped: Which tasks are answered ``skipped`` without synthesis (of a paused or
            cancelled conversion, or a deleted project; see :mod:`worker.control`).
    """
    name = worker or worker_name()
    stop = stopping or threading.Event()
    policy = settings.retry_policy()
    last_delivery = policy.last_task_delivery

    def backoff_sleep(delay: float) -> None:
        if stop.wait(delay):
            raise _ShuttingDown

    def handle(delivery: Delivery) -> Outcome:
        try:
            task = _parse_task(delivery)
        except MessageError as e:
            log.error("dead-lettering an invalid task message: %s", e)
            return Outcome.REJECT
        give_up = delivery.delivery_count >= last_delivery
        if stopped is not None and stopped.drops(task):
            return _skip(task, publisher, name)
        try:
            result = process_task(
                task,
                synthesizer,
                policy=policy,
                give_up_on_transient=give_up,
                worker=name,
                sleep=backoff_sleep,
                breaker=breaker,
            )
        except VoiceServerAuthError as e:
            log.error("task %s requeued: %s", task.task_id, e)
            return Outcome.REQUEUE
        except TransientSynthesisError as e:
            log.warning(
                "task %s (delivery %d, answered as failed at %d): %s; requeueing",
                task.task_id,
                delivery.delivery_count,
                last_delivery,
                e,
            )
            return Outcome.REQUEUE
        except _ShuttingDown:
            log.info("task %s requeued: shutting down during a retry back-off", task.task_id)
            return Outcome.REQUEUE
        try:
            publisher.publish_result(result)
        except PublishError as e:
            log.error("task %s: result not published (%s); requeueing the task", task.task_id, e)
            return Outcome.REQUEUE
        log.info(
            "task %s segment %d %s in %d ms",
            task.task_id,
            task.segment_id,
            result.status,
            result.elapsed_ms,
        )
        # A failed result carries its error to the segment; dead-lettering the task as well would
        # race the result to the API's dead-letter consumer and could replace that error.
        return Outcome.ACK

    return handle


def _skip(task: TaskMessage, publisher: MessagePublisher, name: str) -> Outcome:
    """Answer a stopped project's task ``skipped``, unsynthesized."""
    skipped = ResultMessage(
        task_id=task.task_id,
        segment_id=task.segment_id,
        project_id=task.project_id,
        status="skipped",
        worker=name,
    )
    try:
        publisher.publish_result(skipped)
    except PublishError as e:
        log.error("task %s: skip not published (%s); requeueing the task", task.task_id, e)
        return Outcome.REQUEUE
    log.info("task %s of project %d skipped (stopped)", task.task_id, task.project_id)
    return Outcome.ACK


def _parse_task(delivery: Delivery) -> TaskMessage:
    return TaskMessage.from_wire(delivery.body, delivery.headers)


# Lanes (api/lanes.py): a book's tasks and the interactive lane's (re-synthesized sentences).
LANES = ("bulk", "interactive")


def _lane_queue(topology: Topology, lane: str) -> str:
    if lane not in LANES:
        raise ValueError(f"unknown lane {lane!r}: use {' or '.join(LANES)}")
    return topology.tasks_interactive if lane == "interactive" else topology.tasks


def _lane_handler(
    settings: Settings,
    lane: str,
    handler: Handler,
    publisher: MessagePublisher,
    stopping: threading.Event,
    stopped: StoppedTasks,
) -> Handler:
    """``handler``, or for the interactive lane with ``VOXMILL_INTERACTIVE_TORCHSERVE_URL`` set,
    the same task code on the interactive lane's own TorchServe."""
    if lane != "interactive" or not settings.interactive_torchserve_url:
        return handler
    lane_settings = settings.model_copy(
        update={
            "torchserve_url": settings.interactive_torchserve_url,
            "voice_routes": {},
            "torchserve_pools": {},
        }
    )
    synth = TorchServeSynthesizer(lane_settings)
    return make_task_handler(lane_settings, synth, publisher, stopping=stopping, stopped=stopped)


class _LaneConsumers:
    """The consumers of one worker process (one per lane), started and stopped together."""

    def __init__(self, consumers: list[Consumer]) -> None:
        self.consumers = consumers

    @property
    def connected(self) -> bool:
        return all(c.connected for c in self.consumers)

    def start(self) -> _Joiner:
        return _Joiner([c.start() for c in self.consumers])

    def stop(self) -> None:
        for c in self.consumers:
            c.stop()

    def pause(self) -> None:
        """Stop taking new tasks on every lane (the circuit breaker opened)."""
        for c in self.consumers:
            c.pause()

    def resume(self) -> None:
        for c in self.consumers:
            c.resume()


class _Joiner:
    def __init__(self, threads: list[threading.Thread]) -> None:
        self.threads = threads

    def join(self) -> None:
        for t in self.threads:
            t.join()


def _observe(stopped: StoppedTasks, delivery: Delivery) -> Outcome:
    # An event this worker cannot read is no instruction to it.
    with contextlib.suppress(MessageError):
        stopped.observe(EventMessage.from_wire(delivery.body, delivery.headers))
    return Outcome.ACK


def _stop_when_set(event: threading.Event, consumer: Consumer | _LaneConsumers) -> None:
    event.wait()
    consumer.stop()


@contextmanager
def _signals_stop(stopping: threading.Event, consumer: Consumer | _LaneConsumers) -> Iterator[None]:
    """Route SIGTERM/SIGINT to a graceful stop while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: finishing in-flight tasks, then exiting", signal.Signals(signum).name)
        stopping.set()
        consumer.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_worker(
    settings: Settings,
    synthesizer: Synthesizer | None = None,
    *,
    health_port: int = 8001,
    health_host: str = "127.0.0.1",
    concurrency: int | None = None,
    stop: threading.Event | None = None,
    lanes: Sequence[str] = LANES,
) -> int:
    """Consume the task queues of ``lanes`` until SIGTERM/SIGINT (or ``stop``), then finish
    in-flight tasks and return.

    Args:
        settings: The process settings.
        synthesizer: Default: :class:`~synthesis.torchserve.TorchServeSynthesizer` for ``settings``.
        health_port: Port of ``GET /healthz`` and ``GET /readyz`` (0 disables it).
        health_host: Interface of the health endpoint (loopback by default; the chart passes
            ``0.0.0.0`` so the kubelet reaches it on the pod's address).
        concurrency: Parallel tasks (default ``settings.prefetch``).
        stop: Set it to stop the worker from another thread (signals do it in the main thread).
        lanes: The lanes consumed, each with its own consumer (``bulk``: ``<prefix>.tasks``,
            ``interactive``: ``<prefix>.tasks.interactive``); the chart runs one Deployment per
            lane so each scales on its own queue.

    Returns:
        The exit status: 0 after a graceful stop.
    """
    own_synthesizer = synthesizer is None
    synth: Synthesizer = synthesizer or TorchServeSynthesizer(settings)
    stopping = stop or threading.Event()
    publisher = Publisher(settings, name="voxmill-worker-results")
    policy = settings.retry_policy()
    consumer: _LaneConsumers | None = None

    def breaker_changed(closed: bool) -> None:
        # Open: stop taking tasks on every lane, so the backlog waits in RabbitMQ and not in
        # failures.
        if consumer is not None:
            consumer.resume() if closed else consumer.pause()

    breaker = VoiceBreaker(
        failures=policy.breaker_failures,
        probe=functools.partial(_probe, synth),
        backoff=policy.probe_backoff,
        on_change=breaker_changed,
    )
    stopped = StoppedTasks()
    handler = make_task_handler(
        settings, synth, publisher, stopping=stopping, breaker=breaker, stopped=stopped
    )
    control = Consumer.for_events(
        settings, functools.partial(_observe, stopped), name="voxmill-worker-control"
    )
    consumer = _LaneConsumers(
        [
            Consumer(
                settings,
                _lane_queue(publisher.topology, lane),
                _lane_handler(settings, lane, handler, publisher, stopping, stopped),
                concurrency=concurrency,
                name=f"voxmill-worker-{lane}",
            )
            for lane in lanes
        ]
    )
    live = consumer

    def ready() -> str | None:
        if not live.connected:
            return "not connected to RabbitMQ"
        if breaker.is_open:
            return f"not taking tasks: {breaker.reason}"
        return None

    health = (
        HealthServer(health_host, health_port, lambda: live.connected, ready=ready)
        if health_port
        else None
    )
    try:
        if health is not None:
            health.start()
        with _signals_stop(stopping, consumer):
            # The consumer runs in its own thread so that signal handlers, which Python runs on the
            # main thread, never interrupt the connection thread inside pika.
            control.start()
            thread = consumer.start()
            threading.Thread(
                target=_stop_when_set, args=(stopping, consumer), name="worker-stop", daemon=True
            ).start()
            thread.join()
            control.stop()
            control.join(5.0)
    finally:
        breaker.stop()
        if health is not None:
            health.close()
        publisher.close()
        if own_synthesizer and isinstance(synth, TorchServeSynthesizer):
            synth.close()
    log.info("worker stopped")
    return 0


def _probe(synthesizer: Synthesizer) -> bool:
    """Whether the voice server answers with the current key (re-read first).

    Raises:
        VoiceServerAuthError: It answers but refuses the key (the breaker logs it loudly).
    """
    reload_token = getattr(synthesizer, "reload_token", None)
    if callable(reload_token):
        reload_token()
    ping = getattr(synthesizer, "ping", None)
    return bool(ping()) if callable(ping) else True


def cli(argv: list[str] | None = None) -> int:
    """Entry point of ``voxmill worker`` (settings from ``VOXMILL_*`` environment variables)."""
    parser = argparse.ArgumentParser(
        prog="voxmill worker", description="Synthesize segment tasks from RabbitMQ via TorchServe."
    )
    parser.add_argument(
        "--health-port", type=int, default=8001, help="GET /healthz port; 0 disables it"
    )
    parser.add_argument(
        "--health-host",
        default="127.0.0.1",
        help="health endpoint interface (default loopback; 0.0.0.0 in a pod)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="parallel tasks (default VOXMILL_PREFETCH)"
    )
    parser.add_argument(
        "--lanes",
        default=",".join(LANES),
        help="comma-separated lanes to consume: bulk (books), interactive (re-synthesis)",
    )
    args = parser.parse_args(argv)
    lanes = [lane.strip() for lane in args.lanes.split(",") if lane.strip()]
    if not lanes or any(lane not in LANES for lane in lanes):
        parser.error(f"--lanes {args.lanes!r}: name one or more of {', '.join(LANES)}")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per task comes from this module; pika and httpx would add several more.
    logging.getLogger("pika").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = get_settings()
    except ValidationError as e:
        print(f"voxmill worker: invalid settings:\n{e}", file=sys.stderr)
        return 2
    return run_worker(
        settings,
        health_port=args.health_port,
        health_host=args.health_host,
        concurrency=args.concurrency,
        lanes=lanes,
    )


if __name__ == "__main__":
    raise SystemExit(cli(sys.argv[1:]))
