"""The :class:`~synthesis.base.Synthesizer` that calls TorchServe over HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from urllib.parse import quote

import httpx

from contract.messages import SynthesisParams
from contract.settings import Settings
from synthesis.base import (
    Audio,
    EncodedAudio,
    PermanentSynthesisError,
    TransientSynthesisError,
    UnknownVoiceError,
    VoiceServerAuthError,
    VoiceServerUnavailable,
    handler_request,
    refusal,
    timings_from_header,
)

log = logging.getLogger(__name__)

# The handler's description of its answer (handlers/voxmill_handler.py).
SAMPLE_RATE_HEADER = "X-Sample-Rate"
SAMPLES_HEADER = "X-Audio-Samples"
TIMINGS_HEADER = "X-Timings"
# TorchServe 0.12 answers a missing or stale token with 400 and this exception type, not 401.
_TOKEN_ERROR_TYPE = "InvalidKeyException"
# Statuses of a server (or the gateway in front of it) that is down, restarting or has no free
# model worker: the request itself was fine, so the task waits for the server (RFC 9110 15.6).
_UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


def _error_text(response: httpx.Response) -> str:
    """The server's explanation: the handler's ``{"error": ...}``, TorchServe's ``message``, or
    the start of the body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:500].strip() or response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "message"):
            if body.get(key):
                return str(body[key])
    return json.dumps(body)[:500]


def _is_token_refusal(response: httpx.Response) -> bool:
    if response.status_code == 401:
        return True
    if response.status_code != 400:
        return False
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and body.get("type") == _TOKEN_ERROR_TYPE


def _described(response: httpx.Response, fmt: str) -> EncodedAudio:
    """The audio of a 200 answer with the sample rate and count from its headers (not decoded).

    Raises:
        PermanentSynthesisError: The headers are missing or not numbers (a voice archive built
            before the handler set them: rebuild it).
    """
    try:
        rate = int(response.headers[SAMPLE_RATE_HEADER])
        samples = int(response.headers[SAMPLES_HEADER])
    except (KeyError, ValueError) as e:
        raise PermanentSynthesisError(
            f"TorchServe's answer lacks valid {SAMPLE_RATE_HEADER} / {SAMPLES_HEADER} headers "
            f"({e}); rebuild the voice archive with this version (voxmill build-mar)"
        ) from e
    if rate <= 0 or samples < 0:
        raise PermanentSynthesisError(f"TorchServe described its audio as {samples} at {rate} Hz")
    return EncodedAudio(
        data=response.content,
        format=fmt,
        sample_rate=rate,
        num_samples=samples,
        timings=timings_from_header(response.headers.get(TIMINGS_HEADER)),
    )


class TorchServeSynthesizer:
    """Synthesize through TorchServe's inference API, with its token.

    ``POST {base}/predictions/{voice}[/{version}]`` where the base URL comes from
    ``Settings.torchserve_for`` (the voice's pool in ``VOXMILL_TORCHSERVE_POOLS``, else
    ``VOXMILL_VOICE_ROUTES``, else ``VOXMILL_TORCHSERVE_URL``). Errors map onto the
    :mod:`synthesis.base` classes so callers know whether to retry.

    Args:
        settings: URLs, routes, pools, token (or key file) and timeout.
        http: A client to use (tests pass one with ``httpx.MockTransport``); by default one is made
            and closed by :meth:`close`.
        pool_of: The pool of a voice when a call names none (the API's voice registry).
    """

    def __init__(
        self,
        settings: Settings,
        http: httpx.Client | None = None,
        *,
        pool_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self._settings = settings
        # The API knows each registered voice's pool (from its database); workers get it in the
        # task instead.
        self._pool_of = pool_of
        self._own_http = http is None
        self._http = http or httpx.Client(
            timeout=httpx.Timeout(settings.torchserve_timeout_s, connect=10.0)
        )
        self._token = settings.torchserve_auth_token()
        self._policy = settings.retry_policy()

    def route_pools(self, pool_of: Callable[[str], str | None]) -> None:
        """Route each voice to its pool's TorchServe: ``pool_of(voice)`` (the API's registry)."""
        self._pool_of = pool_of

    def close(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._own_http:
            self._http.close()

    def __enter__(self) -> TorchServeSynthesizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def voices(self) -> list[str]:
        """The configured voices: the keys of ``voice_routes`` and the default voice.

        Workers may not use TorchServe's management API, so the list comes from settings.
        """
        return sorted({self._settings.default_voice, *self._settings.voice_routes})

    def synthesize(
        self,
        voice: str,
        text: str,
        params: SynthesisParams | None = None,
        *,
        version: str | None = None,
        pool: str | None = None,
    ) -> Audio:
        """Synthesize ``text`` with ``voice`` (``version`` of it, on ``pool``'s TorchServe) to
        samples (the handler's raw PCM).

        Raises:
            VoiceServerUnavailable: A refused or dropped connection, a connect timeout, or
                HTTP 502/503/504 (the server is down or restarting).
            TransientSynthesisError: Another 5xx, 408/425/429, or a read timeout.
            VoiceServerAuthError: The token was refused, also after re-reading the key file.
            UnknownVoiceError: TorchServe does not serve ``voice`` (404).
            PermanentSynthesisError: The input was refused (other 4xx, with the server's text),
                or no TorchServe URL is configured.
        """
        encoded = self.synthesize_encoded(
            voice, text, params, fmt="pcm", version=version, pool=pool
        )
        return Audio.from_pcm(encoded.data, encoded.sample_rate, encoded.timings)

    def synthesize_encoded(
        self,
        voice: str,
        text: str,
        params: SynthesisParams | None = None,
        *,
        fmt: str = "flac",
        version: str | None = None,
        pool: str | None = None,
    ) -> EncodedAudio:
        """Synthesize ``text`` with ``voice`` to a file the handler encoded as ``fmt``; the bytes
        are not decoded, their length comes from the handler's headers. ``version`` pins a
        version of a registered voice (``/predictions/{voice}/{version}``); ``pool`` picks the
        TorchServe pool (default: the voice's pool from the API's registry, else the voice
        routes).

        Raises:
            The same errors as :meth:`synthesize`.
        """
        if pool is None and self._pool_of is not None:
            pool = self._pool_of(voice)
        base = self._settings.torchserve_for(voice, pool).rstrip("/")
        if not base:
            raise PermanentSynthesisError(
                f"no TorchServe URL for voice {voice!r}: set VOXMILL_TORCHSERVE_URL or add the "
                "voice to VOXMILL_VOICE_ROUTES"
            )
        payload = handler_request(text, params, fmt)
        url = f"{base}/predictions/{quote(voice, safe='')}"
        if version:
            url += f"/{quote(version, safe='')}"

        response = self._post(url, payload)
        if _is_token_refusal(response):
            # TorchServe's keys expire and can be regenerated; the key file may hold a new one.
            self.reload_token()
            response = self._post(url, payload)
            if _is_token_refusal(response):
                raise VoiceServerAuthError(
                    f"TorchServe refused the token (HTTP {response.status_code}: "
                    f"{_error_text(response)}); set VOXMILL_TORCHSERVE_TOKEN or "
                    "VOXMILL_TORCHSERVE_KEY_FILE to TorchServe's current inference key"
                )
        return self._audio_from(response, voice, base, fmt)

    def reload_token(self) -> bool:
        """Read the inference key again (``VOXMILL_TORCHSERVE_TOKEN`` or the key file): a restarted
        TorchServe 0.12 issues a new one.

        A key file that is missing or cannot be read whole (TorchServe deletes it on start and
        then writes it) keeps the current key: the next re-read gets the new one, and no caller
        sees the read fail.

        Returns:
            Whether the key changed.
        """
        source = (
            "VOXMILL_TORCHSERVE_TOKEN"
            if self._settings.torchserve_token
            else str(self._settings.torchserve_key_file or "no key file")
        )
        try:
            token = self._settings.torchserve_auth_token()
        except (OSError, ValueError, AttributeError) as e:
            log.warning(
                "could not re-read the TorchServe key from %s (%s); keeping the key in use",
                source,
                e,
            )
            return False
        if not token and self._token:
            log.warning("no TorchServe inference key in %s; keeping the key in use", source)
            return False
        if token == self._token:
            return False
        self._token = token
        log.warning(
            "re-read the TorchServe inference key from %s: it changed (a restarted TorchServe "
            "issues a new one); using the new key",
            source,
        )
        return True

    def ping(self) -> bool:
        """Whether every configured TorchServe answers ``/ping`` as healthy (for readiness).

        Raises:
            VoiceServerAuthError: A TorchServe refused the key (it answers, but not to this
                worker: an operator's problem, not an outage).
        """
        bases = {
            self._settings.torchserve_url,
            *self._settings.voice_routes.values(),
            *self._settings.torchserve_pools.values(),
        }
        bases.discard("")
        if not bases:
            return False
        for base in sorted(bases):
            try:
                response = self._http.get(
                    f"{base.rstrip('/')}/ping", headers=self._headers(), timeout=5.0
                )
            except httpx.HTTPError as e:
                log.info("TorchServe %s is not reachable: %s", base, e)
                return False
            if _is_token_refusal(response):
                raise VoiceServerAuthError(
                    f"TorchServe {base} refused the inference key (HTTP {response.status_code}: "
                    f"{_error_text(response)}); set VOXMILL_TORCHSERVE_TOKEN or "
                    "VOXMILL_TORCHSERVE_KEY_FILE to TorchServe's current inference key"
                )
            if response.status_code != 200:
                log.info("TorchServe %s ping: HTTP %d", base, response.status_code)
                return False
        return True

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def _post(self, url: str, payload: dict[str, object]) -> httpx.Response:
        try:
            return self._http.post(url, json=payload, headers=self._headers())
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            raise VoiceServerUnavailable(f"TorchServe unreachable at {url}: {e!r}") from e
        except httpx.TimeoutException as e:
            # The server took the request and did not answer in time: maybe this text, maybe a
            # hung server; counted as an attempt, not as an outage.
            raise TransientSynthesisError(f"TorchServe timed out at {url}: {e!r}") from e
        except httpx.TransportError as e:
            raise VoiceServerUnavailable(f"TorchServe unreachable at {url}: {e!r}") from e

    def _audio_from(
        self, response: httpx.Response, voice: str, base: str, fmt: str
    ) -> EncodedAudio:
        status = response.status_code
        if status == 200:
            if response.headers.get("content-type", "").startswith("application/json"):
                raise PermanentSynthesisError(
                    f"voice {voice!r} returned no audio: {_error_text(response)}"
                )
            return _described(response, fmt)
        text = _error_text(response)
        if status == 404:
            raise UnknownVoiceError(f"voice {voice!r} is not served by {base}: {text}")
        if status in _UNAVAILABLE_STATUSES:
            raise VoiceServerUnavailable(f"TorchServe unavailable (HTTP {status}): {text}")
        if self._policy.is_transient_status(status):
            raise TransientSynthesisError(f"TorchServe busy or failing (HTTP {status}): {text}")
        raise refusal(f"TorchServe refused the text (HTTP {status}): {text}")
