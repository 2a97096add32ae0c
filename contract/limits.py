"""Every limit and default a user can meet, defined once.

The settings (``contract/settings.py``), the voice handler, the API's request schemas, the CLI
and the README's "Limits" table read these; ``tests/unit/test_contract.py`` checks that the table
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
# What a sentence with nothing to say (a lone "…", only emoji) is spoken as: a pause of about a
# sentence's gap, in documents and in streamed speech alike.
SILENT_SENTENCE_MS = 500

# How the voice handler refuses text with nothing speakable (no letters or numbers). Callers
# recognize this refusal by the text (HTTP gives it no status of its own) and make it a pause
# where other speech goes on around it (synthesis.base.NothingToSpeakError).
NOTHING_TO_SPEAK = "the text has nothing to speak (no letters or numbers)"

# Documents: read and split in a pool of worker processes (text_processing.isolation), each
# document under a deadline and each process under an address-space limit (killed and replaced
# when it overruns). Every value is the default of a setting (``VOXMILL_<NAME>``, named beside it)
# and of text_processing.limits.DocumentLimits; each is checked while reading, not after.
# Setting ``VOXMILL_MAX_LINES``: lines of one document's text (checked first, in one pass).
MAX_LINES = 200_000
# Setting ``VOXMILL_MAX_BLOCK_CHARS``: one paragraph.
MAX_BLOCK_CHARS = 500_000
# Setting ``VOXMILL_MAX_NESTING_DEPTH``: nesting of lists, quotes or sections.
MAX_NESTING_DEPTH = 16
# Setting ``VOXMILL_MAX_UNPACKED_BYTES``: what an archive (EPUB, DOCX) may unpack to.
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
# Setting ``VOXMILL_MAX_ARCHIVE_MEMBERS``: files one archive may hold.
MAX_ARCHIVE_MEMBERS = 5_000
# Fixed: how much an archive may expand (unpacked ÷ packed, once over 1 MiB unpacked); a zip
# bomb stops here.
MAX_COMPRESSION_RATIO = 200
# Setting ``VOXMILL_MAX_PDF_PAGES``.
MAX_PDF_PAGES = 2_000
# Setting ``VOXMILL_PARSE_TIMEOUT_S``: wall-clock seconds to read and split one document.
PARSE_TIMEOUT_S = 30.0
# Setting ``VOXMILL_PARSE_MEMORY_BYTES``: address space of one document reader process.
PARSE_MEMORY_BYTES = 1024 * 1024 * 1024
# Setting ``VOXMILL_PARSE_WORKERS``: document reader processes.
PARSE_WORKERS = 2

# Longest piece of one sentence the voice handler gives the model in one call: inside one
# synthesis request, longer sentences are cut at clauses, then at spaces (handler option
# ``chunk_chars``). A document's sentence is one segment up to MAX_SEGMENT_CHARS (its written and
# its spoken form), cut at clauses above it (text_processing.limits.DocumentLimits).
MAX_SENTENCE_CHARS = 400
# Longest pause one SSML ``<break>`` or one ``break_ms`` piece may ask for.
MAX_BREAK_MS = 10_000

# Pronunciation lexicon of one project. Setting ``VOXMILL_MAX_LEXICON_ENTRIES``.
MAX_LEXICON_ENTRIES = 5_000
# One entry: the written word, and what it is read as (words, or IPA phonemes).
MAX_LEXICON_GRAPHEME_CHARS = 100
MAX_LEXICON_PRONUNCIATION_CHARS = 200

# Voice uploads (``POST /v1/voices``). The request body (413 above it), setting
# ``VOXMILL_MAX_VOICE_UPLOAD_BYTES``; everything an archive unpacks to (the zip-bomb bound, checked
# on the bytes written while unpacking), setting ``VOXMILL_MAX_VOICE_UNPACKED_BYTES``; and the
# number of entries an archive may hold (a voice is a handful of files; fixed).
MAX_VOICE_UPLOAD_BYTES = 512 * 1024 * 1024
MAX_VOICE_UNPACKED_BYTES = 1024 * 1024 * 1024
MAX_VOICE_ARCHIVE_ENTRIES = 200
# The sample text an uploaded voice must speak to be accepted (fixed).
MAX_VOICE_SAMPLE_CHARS = 500
# The child process that loads an uploaded voice and speaks the sample: wall-clock time and
# address space. Settings ``VOXMILL_VOICE_VALIDATE_TIMEOUT_S`` and
# ``VOXMILL_VOICE_VALIDATE_MEMORY_MB``.
VOICE_VALIDATE_TIMEOUT_S = 300.0
VOICE_VALIDATE_MEMORY_MB = 8192

# Streaming and lanes (issue 14). WebSocket ``/v1/audio/speech/stream``: text buffered while no
# sentence is complete (1009 "message too big" above it), one text message, and sentences waiting
# for synthesis or for a slow reader (the socket stops being read while they wait: back-pressure).
# Settings ``VOXMILL_STREAM_MAX_BUFFER_CHARS`` and ``VOXMILL_STREAM_MAX_PENDING``; the message size
# is fixed.
STREAM_MAX_BUFFER_CHARS = 2_000
STREAM_MAX_MESSAGE_CHARS = 4_096
STREAM_MAX_PENDING = 4
# Seconds a WebSocket stream may stay without a message from the client before it is closed (1001).
# Setting ``VOXMILL_STREAM_IDLE_TIMEOUT_S``.
STREAM_IDLE_TIMEOUT_S = 60.0
# Interactive admission (REST speech and WebSocket sentences, per API replica): synthesizer calls
# at once, and how long one may wait for a free slot before the request gets 503 + Retry-After
# (WebSocket: close 1013 "try again later"). Settings ``VOXMILL_INTERACTIVE_CONCURRENCY`` and
# ``VOXMILL_INTERACTIVE_MAX_WAIT_S``.
INTERACTIVE_CONCURRENCY = 4
INTERACTIVE_MAX_WAIT_S = 10.0
# Embedded mode: the longest a book's task waits for interactive work to finish before it runs
# anyway (the bulk lane slows down, never stops). Setting ``VOXMILL_BULK_YIELD_MAX_S``.
BULK_YIELD_MAX_S = 30.0
# Object storage, jobs and webhooks (issue 13).
# Setting ``VOXMILL_AUDIO_ORPHAN_GRACE_S``: an audio object no segment refers to is deleted by
# the sweep once it is this old (a write whose commit is still in flight is younger).
AUDIO_ORPHAN_GRACE_S = 3600.0
# Setting ``VOXMILL_PRESIGN_TTL_S``: how long a presigned download URL of a job output is valid.
PRESIGN_TTL_S = 3600
# Setting ``VOXMILL_WEBHOOK_RETRY_FOR_S``: how long a callback is retried before it is given up.
WEBHOOK_RETRY_FOR_S = 3600.0
# Setting ``VOXMILL_WEBHOOK_TIMEOUT_S``: one callback request.
WEBHOOK_TIMEOUT_S = 10.0
# An ``Idempotency-Key`` header (the IETF draft's header; fixed).
MAX_IDEMPOTENCY_KEY_CHARS = 255
# A callback URL (fixed).
MAX_CALLBACK_URL_CHARS = 2048
# Production outputs (issue 10).
# Finished audiobook exports (M4B, ZIP) an API replica keeps on disk for download; the oldest go.
MAX_EXPORTS_KEPT = 20
# A project's cover image (JPEG or PNG) for audiobook files.
MAX_COVER_BYTES = 5 * 1024 * 1024
# Its width × height (fixed): a small file can claim a huge image, which would take gigabytes to
# decode wherever it is shown. 25 megapixels is 5000 × 5000, above every audiobook store's size.
MAX_COVER_PIXELS = 25_000_000
# Reliability (issue 16).
# How long one task waits for a voice server that is down, restarting or refusing connections
# (back-off, then a probe) before its segment is marked failed. Setting
# ``VOXMILL_TASK_RETRY_BUDGET_S``; keep it under RabbitMQ's ``consumer_timeout`` (30 min by
# default), since the task stays unacknowledged meanwhile.
TASK_RETRY_BUDGET_S = 600.0
# Ids, ``limit`` and ``offset`` in requests: what a Postgres ``bigint`` holds (fixed).
MAX_ID = 2**63 - 1
# A multipart file name (fixed): what file systems and object stores take.
MAX_FILENAME_CHARS = 255
# Expensive requests (uploads, speech, conversions, re-synthesis) per client (API key, else
# address): at once, and per minute. 429 with ``Retry-After`` above either. Settings
# ``VOXMILL_CLIENT_CONCURRENCY`` and ``VOXMILL_CLIENT_RATE_PER_MINUTE``.
CLIENT_CONCURRENCY = 4
CLIENT_RATE_PER_MINUTE = 600
# A request body that is not a document or voice upload (JSON: projects, lexicon entries,
# speech input), refused with 413 while it streams in (fixed).
MAX_JSON_BODY_BYTES = 1024 * 1024
