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
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from pydantic import ValidationError

from contract.messages import EventMessage, MessageError, ResultMessage, TaskMessage
from contract.settings import Settings, get_settings
from messaging.consumer import Consumer
from messaging.publisher import Publisher
from messaging.types import Delivery, Handler, MessagePublisher, Outcome, PublishError
from synthesis.base import Synthesizer, TransientSynthesisError
from synthesis.torchserve import TorchServeSynthesizer
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
    stopped: StoppedTasks | None = None,
) -> Handler:
    """The handler for ``<prefix>.tasks``, for the RabbitMQ and the in-process consumer alike.

    - An invalid body is rejected to the dead-letter queue (never retried).
    - A task whose transient failures outlast the retries is requeued so another worker may
      succeed; on its last delivery before the queue's limit it is answered with a ``failed``
      result instead, so the segment ends with its error and the conversion still completes.
    - Otherwise the result is published with confirms and only then is the task acked.

    Args:
        settings: Their :meth:`~contract.settings.Settings.retry_policy` says how often to retry
            and on which delivery a task is answered ``failed``.
        synthesizer: Where the audio comes from.
        publisher: Where the results go.
        stopping: Set on shutdown; a task waiting out a retry back-off is requeued at once.
        worker: Name recorded in results (default ``hostname-pid``).
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
            )
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
        # The failed result is already stored by the API; rejecting (not acking) the task parks
        # it in the dead-letter queue, so an operator can see what the voice server refused.
        return Outcome.REJECT if result.status == "failed" else Outcome.ACK

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


def _observe(stopped: StoppedTasks, delivery: Delivery) -> Outcome:
    # An event this worker cannot read is no instruction to it.
    with contextlib.suppress(MessageError):
        stopped.observe(EventMessage.from_wire(delivery.body, delivery.headers))
    return Outcome.ACK


def _stop_when_set(event: threading.Event, consumer: Consumer) -> None:
    event.wait()
    consumer.stop()


@contextmanager
def _signals_stop(stopping: threading.Event, consumer: Consumer) -> Iterator[None]:
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
    health_host: str = "0.0.0.0",
    concurrency: int | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Consume ``<prefix>.tasks`` until SIGTERM/SIGINT (or ``stop``), then finish in-flight tasks
    and return.

    Args:
        settings: The process settings.
        synthesizer: Default: :class:`~synthesis.torchserve.TorchServeSynthesizer` for ``settings``.
        health_port: Port of ``GET /healthz`` (0 disables it).
        health_host: Interface of the health endpoint.
        concurrency: Parallel tasks (default ``settings.prefetch``).
        stop: Set it to stop the worker from another thread (signals do it in the main thread).

    Returns:
        The exit status: 0 after a graceful stop.
    """
    own_synthesizer = synthesizer is None
    synth: Synthesizer = synthesizer or TorchServeSynthesizer(settings)
    stopping = stop or threading.Event()
    publisher = Publisher(settings, name="voxmill-worker-results")
    stopped = StoppedTasks()
    handler = make_task_handler(settings, synth, publisher, stopping=stopping, stopped=stopped)
    control = Consumer.for_events(
        settings, functools.partial(_observe, stopped), name="voxmill-worker-control"
    )
    consumer = Consumer(
        settings,
        publisher.topology.tasks,
        handler,
        concurrency=concurrency,
        name="voxmill-worker",
    )
    health = (
        HealthServer(health_host, health_port, lambda: consumer.connected) if health_port else None
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
        if health is not None:
            health.close()
        publisher.close()
        if own_synthesizer and isinstance(synth, TorchServeSynthesizer):
            synth.close()
    log.info("worker stopped")
    return 0


def cli(argv: list[str] | None = None) -> int:
    """Entry point of ``voxmill worker`` (settings from ``VOXMILL_*`` environment variables)."""
    parser = argparse.ArgumentParser(
        prog="voxmill worker", description="Synthesize segment tasks from RabbitMQ via TorchServe."
    )
    parser.add_argument(
        "--health-port", type=int, default=8001, help="GET /healthz port; 0 disables it"
    )
    parser.add_argument("--health-host", default="0.0.0.0", help="health endpoint interface")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="parallel tasks (default VOXMILL_PREFETCH)"
    )
    args = parser.parse_args(argv)
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
    )


if __name__ == "__main__":
    raise SystemExit(cli(sys.argv[1:]))
