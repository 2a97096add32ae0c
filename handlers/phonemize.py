"""The one place Voxmill touches espeak-ng.

espeak-ng is GPL-3 and reaches us through the ``piper-tts`` package, which bundles it (its
``espeakbridge`` extension and data). Keeping every call behind this adapter means a voice family
that does not need espeak (``transformers`` VITS) never loads it, and replacing the phonemizer is a
change to this file alone. See the README's licensing note.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Mapping, Sequence

_lock = threading.Lock()
_phonemizer: object | None = None

BOS, EOS, PAD = "^", "$", "_"


def _espeak() -> object:
    global _phonemizer
    if _phonemizer is None:
        from piper.phonemize_espeak import ESPEAK_DATA_DIR, EspeakPhonemizer

        _phonemizer = EspeakPhonemizer(ESPEAK_DATA_DIR)
    return _phonemizer


def phonemize(text: str, voice: str) -> list[list[str]]:
    """Turn text into phonemes, one list per sentence as espeak-ng splits it.

    Args:
        text: Normalized text (numbers already spelled out).
        voice: The espeak-ng voice, e.g. ``en-us``.

    Returns:
        Phoneme symbols (decomposed code points) per sentence; empty sentences are dropped.
    """
    # espeak-ng keeps global state (the current voice): one caller at a time.
    with _lock:
        sentences = _espeak().phonemize(voice, text)  # type: ignore[attr-defined]
    return [s for s in sentences if any(p.strip() for p in s)]


def phonemes_to_ids(phonemes: Sequence[str], id_map: Mapping[str, Sequence[int]]) -> list[int]:
    """Map phonemes to model ids the Piper way: BOS, each phoneme followed by PAD, EOS.

    Symbols the voice does not know are skipped rather than failing the whole request.
    """
    pad = list(id_map[PAD])
    ids: list[int] = [*id_map[BOS], *pad]
    for phoneme in phonemes:
        known = id_map.get(phoneme) or id_map.get(unicodedata.normalize("NFC", phoneme))
        if not known:
            continue
        ids.extend(known)
        ids.extend(pad)
    ids.extend(id_map[EOS])
    return ids
