"""Every limit and default a user can meet, defined once.

The settings (``contract/settings.py``), the voice handler, the API's request schemas, the CLI
and the README's "Limits" table read these; ``tests/unit/test_limits.py`` checks that the table
says what this module says. Values that an operator may change are only the defaults of a
setting or of a handler option (named beside each).
"""

from __future__ import annotations

# Speaking rate: 1.0 is the voice's own pace. Below 0.25 VITS stretches phonemes into noise.
SPEED_MIN = 0.25
SPEED_MAX = 4.0
SPEED_DEFAULT = 1.0

# Optional VITS sampling noise (``noise_scale``, ``noise_w``); ``None`` keeps the voice's own.
NOISE_MIN = 0.0
NOISE_MAX = 2.0

# Text of one synthesis request to a voice (a segment, a corrected sentence, one TorchServe
# request); the handler answers 413 above it. Handler option ``max_text_chars``.
MAX_SEGMENT_CHARS = 2_000
# Input of ``POST /v1/audio/speech``; it is split into chunks below MAX_SEGMENT_CHARS.
# Setting ``VOXMILL_MAX_SPEECH_CHARS``.
MAX_SPEECH_INPUT_CHARS = 4_096
# One document upload. Setting ``VOXMILL_MAX_UPLOAD_BYTES``.
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# Segments (sentences) one document may split into. Setting ``VOXMILL_MAX_SEGMENTS``.
MAX_SEGMENTS_PER_DOCUMENT = 20_000

# Silences between pieces of speech, in milliseconds: between two sentences (in one request,
# a streamed answer, or a downloaded chapter), after a clause that was cut at a comma, and between
# two paragraphs of a download. Handler options ``sentence_pause_ms`` and ``clause_pause_ms``.
SENTENCE_PAUSE_MS = 250
CLAUSE_PAUSE_MS = 120
PARAGRAPH_PAUSE_MS = 700
