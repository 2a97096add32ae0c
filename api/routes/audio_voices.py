"""``GET /v1/audio/voices``: the voices an OpenAI-style client may name, as peers list them
(Kokoro-FastAPI and openedai-speech answer ``{"voices": [names]}``), with the OpenAI voice names
and the voice each stands for (:mod:`api.openai_compat`). ``/v1/voices`` has the details."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import SettingsDep
from api.openai_compat import alias_table
from api.routes.voices import list_voices

router = APIRouter(prefix="/v1/audio", tags=["speech"])


class AudioVoices(BaseModel):
    """Voice names for ``POST /v1/audio/speech``."""

    voices: list[str] = Field(description="Served voices, then OpenAI's names (aliases)")
    default: str = Field(description="The voice used when a request names none")
    aliases: dict[str, str] = Field(description="OpenAI voice name -> the voice it speaks with")


@router.get("/voices", response_model=AudioVoices, summary="Voice names for /v1/audio/speech")
def audio_voices(request: Request, settings: SettingsDep) -> AudioVoices:
    """Every voice name ``POST /v1/audio/speech`` accepts."""
    served = [v.name for v in list_voices(request, settings)]
    aliases = alias_table(settings)
    return AudioVoices(
        voices=[*served, *(a for a in aliases if a not in served)],
        default=settings.default_voice,
        aliases=aliases,
    )
