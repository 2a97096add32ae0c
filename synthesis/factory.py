"""Which synthesizer a process uses when it is given none: one rule for the API and the CLI."""

from __future__ import annotations

from contract.settings import Mode, Settings
from synthesis.base import Synthesizer


def default_synthesizer(settings: Settings) -> Synthesizer | None:
    """The synthesizer ``settings`` point at.

    A configured TorchServe (``VOXMILL_TORCHSERVE_URL``, ``VOXMILL_VOICE_ROUTES`` or
    ``VOXMILL_TORCHSERVE_POOLS``) wins in either mode; otherwise the embedded mode loads the
    handler in this process, and the distributed mode has none (its conversions go through the
    workers; ``/v1/audio/speech`` then answers 503).
    """
    if settings.torchserve_url or settings.voice_routes or settings.torchserve_pools:
        from synthesis.torchserve import TorchServeSynthesizer

        return TorchServeSynthesizer(settings)
    if settings.mode is Mode.EMBEDDED:
        from synthesis.inprocess import InProcessSynthesizer

        return InProcessSynthesizer(settings.model_store, settings.data_dir)
    return None
