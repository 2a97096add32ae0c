"""Signed job callbacks (Standard Webhooks), retried with back-off, every attempt recorded.

A finished job's event is written to ``webhook_messages`` in the transaction that finishes the job
(an outbox: nothing is lost when the process dies before sending). :class:`WebhookDispatcher`
sends due messages from a background thread:

- each request carries ``webhook-id`` (the message id, the same on every attempt),
  ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` of
  ``"<id>.<timestamp>.<body>"`` with the configured secret), as the Standard Webhooks
  specification (https://www.standardwebhooks.com/) defines; signing uses its reference library
  ``standardwebhooks``;
- a 2xx answer delivers the message; anything else (or no answer) is retried after the back-off of
  :class:`contract.retry.Backoff` until ``deadline_at`` (``VOXMILL_WEBHOOK_RETRY_FOR_S`` after the
  event), then the message is marked ``failed``;
- each attempt is a ``webhook_attempts`` row (status code or error, duration).

Callback URLs are checked against the SSRF rules of :func:`check_callback_url` when the job is
created and again before every attempt (the name may resolve elsewhere by then).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from api.models import Job, WebhookAttempt, WebhookMessage, utcnow
from contract.retry import Backoff
from contract.settings import Settings
from messaging.service import BackgroundService

log = logging.getLogger(__name__)

# Cloud metadata services: refused even when their network is allowed (OCI, AWS, GCP, Azure use
# 169.254.169.254; AWS also fd00:ec2::254; Alibaba 100.100.100.200).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
Resolver = Callable[[str, int], list[str]]


class CallbackRefused(ValueError):
    """A callback URL Voxmill will not call; the message says why."""


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def check_callback_url(
    url: str, allow_networks: list[str], resolver: Resolver = resolve
) -> list[str]:
    """Refuse callback URLs that could reach inside the cluster or the cloud's metadata service.

    The host is resolved, and *every* address must be public: loopback, link-local, private
    (RFC 1918, ULA, CGNAT), multicast, reserved and unspecified addresses are refused unless they
    are inside one of ``allow_networks`` (``VOXMILL_WEBHOOK_ALLOW_NETWORKS``); metadata addresses
    are refused always.

    Returns:
        The resolved addresses.

    Raises:
        CallbackRefused: Not http(s), no host, credentials in the URL, unresolvable, or an
            address that is not allowed.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise CallbackRefused("callback_url must be an http:// or https:// URL")
    if not parts.hostname:
        raise CallbackRefused("callback_url has no host")
    if parts.username or parts.password:
        raise CallbackRefused("callback_url must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise CallbackRefused(f"callback_url has an invalid port: {e}") from e
    try:
        addresses = resolver(parts.hostname, port)
    except OSError as e:
        raise CallbackRefused(f"callback_url host {parts.hostname!r} does not resolve") from e
    if not addresses:
        raise CallbackRefused(f"callback_url host {parts.hostname!r} does not resolve")
    allowed = [ipaddress.ip_network(n, strict=False) for n in allow_networks]
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if address in METADATA_ADDRESSES:
            raise CallbackRefused(f"callback_url resolves to a metadata address ({address})")
        if any(address in net for net in allowed):
            continue
        if not address.is_global or address.is_multicast:
            raise CallbackRefused(
                f"callback_url resolves to {address}, a loopback, link-local, private or "
                "reserved address; only public addresses are called unless the operator allows "
                "the network (VOXMILL_WEBHOOK_ALLOW_NETWORKS)"
            )
    return addresses


def new_message(session: Session, job: Job, event_type: str, settings: Settings) -> WebhookMessage:
    """Queue ``event_type`` (``job.completed`` / ``job.failed``) for ``job``'s callback.

    The body is ``{"type", "timestamp", "data": <the job as GET /v1/jobs/{id} shows it, minus
    presigned URLs>}``. The caller commits (with the change that caused the event).
    """
    now = utcnow()
    body = {
        "type": event_type,
        "timestamp": now.isoformat(),
        "data": {
            "id": job.id,
            "status": job.status,
            "outputs": json.loads(job.outputs) if job.outputs else [],
            "error": job.error,
        },
    }
    message = WebhookMessage(
        id=f"msg_{uuid.uuid4().hex}",
        job_id=job.id,
        event_type=event_type,
        url=job.callback_url or "",
        body=json.dumps(body, separators=(",", ":")),
        state="pending",
        attempts=0,
        next_attempt_at=now,
        deadline_at=now + timedelta(seconds=settings.webhook_retry_for_s),
        created_at=now,
    )
    session.add(message)
    return message


def signed_headers(secret: str, msg_id: str, body: str, now: float | None = None) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt."""
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(int(now if now is not None else time.time()), UTC)
    signature = Webhook(secret).sign(msg_id, stamp, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": "voxmill-webhooks/1",
    }


class WebhookDispatcher(BackgroundService):
    """Sends due webhook messages until stopped (see the module's docstring).

    Args:
        session_factory: Sessions on the application database.
        settings: Secret, timeouts, allowed networks, retry time.
        client: The HTTP client (tests may pass their own); redirects are not followed.
        resolver: Name resolution for the SSRF check.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        client: httpx.Client | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        super().__init__("webhook-dispatcher", daemon=True)
        self._sessions = session_factory
        self._settings = settings
        self._client = client or httpx.Client(
            timeout=settings.webhook_timeout_s, follow_redirects=False
        )
        self._resolver = resolver
        self._backoff = Backoff(settings.webhook_backoff_s, 300.0)
        self._woken = threading.Event()

    def wake(self) -> None:
        """Look for due messages now (called after committing one)."""
        self._woken.set()

    def _wake(self) -> None:
        self._woken.set()

    def run(self) -> None:
        """Deliver until :meth:`stop`."""
        self._set_connected(True)
        while not self.stopping:
            try:
                self.deliver_due()
            except SQLAlchemyError as e:
                log.warning("webhook dispatcher: database error (%s)", e)
            except Exception:  # keep delivering the other messages
                log.exception("webhook dispatcher round failed")
            self._woken.wait(self._settings.job_poll_s)
            self._woken.clear()
        self._client.close()
        self._set_connected(False)

    def deliver_due(self) -> int:
        """Make one attempt for every message that is due; returns how many were tried."""
        now = utcnow()
        with self._sessions() as session:
            due = list(
                session.scalars(
                    select(WebhookMessage.id)
                    .where(WebhookMessage.state == "pending", WebhookMessage.next_attempt_at <= now)
                    .order_by(WebhookMessage.next_attempt_at)
                    .limit(50)
                )
            )
        for msg_id in due:
            if self.stopping:
                break
            self._attempt(msg_id)
        return len(due)

    def _attempt(self, msg_id: str) -> None:
        with self._sessions.begin() as session:
            # Claim the attempt: push next_attempt_at forward so another replica skips it.
            message = session.get(WebhookMessage, msg_id, with_for_update={"skip_locked": True})
            if message is None or message.state != "pending" or message.next_attempt_at > utcnow():
                return
            attempt = message.attempts + 1
            url, body = message.url, message.body
            deadline = message.deadline_at
            message.attempts = attempt
            lease = timedelta(seconds=self._settings.webhook_timeout_s * 2)
            message.next_attempt_at = utcnow() + lease
        status, error, took_ms = self._send(url, msg_id, body)
        delivered = status is not None and 200 <= status < 300
        with self._sessions.begin() as session:
            session.add(
                WebhookAttempt(
                    message_id=msg_id,
                    attempt=attempt,
                    status_code=status,
                    error=error,
                    duration_ms=took_ms,
                    at=utcnow(),
                )
            )
            values: dict[str, Any]
            if delivered:
                values = {"state": "delivered"}
            else:
                wait = self._backoff.delay(attempt - 1)
                upcoming = utcnow() + timedelta(seconds=wait)
                if upcoming > deadline:
                    values = {"state": "failed"}
                    log.warning("webhook %s to %s given up after %d attempts", msg_id, url, attempt)
                else:
                    values = {"next_attempt_at": upcoming}
            session.execute(
                update(WebhookMessage).where(WebhookMessage.id == msg_id).values(**values)
            )

    def _send(self, url: str, msg_id: str, body: str) -> tuple[int | None, str | None, int]:
        started = time.monotonic()
        try:
            check_callback_url(url, self._settings.webhook_allow_networks, self._resolver)
            headers = signed_headers(self._settings.webhook_secret, msg_id, body)
            answer = self._client.post(url, content=body.encode(), headers=headers)
            status: int | None = answer.status_code
            error = None if answer.is_success else f"HTTP {answer.status_code}"
        except (CallbackRefused, httpx.HTTPError) as e:
            status, error = None, str(e) or type(e).__name__
        except Exception as e:  # a bad secret or URL must become a recorded attempt, not a crash
            log.exception("webhook %s could not be sent", msg_id)
            status, error = None, f"{type(e).__name__}: {e}"
        took = int((time.monotonic() - started) * 1000)
        return status, error, took
