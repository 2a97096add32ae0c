"""``voxmill convert``: a whole document to one audio file, through the REST API.

The same REST calls run in both modes: with ``--api-url`` (or ``VOXMILL_API_URL``) they go to a
running API (distributed or embedded, anywhere); without, the embedded app is started in this
process on a loopback port for the length of the conversion, with this machine's settings (its
SQLite database, so the project also shows up in ``voxmill api`` afterwards).

The calls are in :mod:`cli.rest`, the servers in :mod:`cli.servers`, the progress bar in
:mod:`cli.progress`. Errors end as one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import httpx

from cli.progress import ConversionProgress, clock
from cli.rest import ConvertError, read_document, run_conversion
from cli.servers import embedded_api, remote_api

FORMATS = ("wav", "flac", "mp3", "ogg")
EXIT_FAILED = 1
POLL_S = 0.5


def build_parser() -> argparse.ArgumentParser:
    """The ``voxmill convert`` argument parser."""
    from text_processing.formats import EXTENSIONS  # the readers' own list, not a copy

    kinds = ", ".join(EXTENSIONS)
    parser = argparse.ArgumentParser(
        prog="voxmill convert",
        description="Convert a document to one audio file.",
    )
    parser.add_argument("document", type=Path, help=f"the document ({kinds})")
    parser.add_argument("-o", "--output", type=Path, help="audio file (default: DOCUMENT.wav)")
    parser.add_argument("--voice", help="voice name (default: the server's default voice)")
    parser.add_argument("--format", choices=FORMATS, help="audio format (default: from -o)")
    parser.add_argument("--name", help="project name (default: the document's file name)")
    parser.add_argument(
        "--api-url",
        default=None,
        help="a running Voxmill API (default: VOXMILL_API_URL; unset: run the embedded app here)",
    )
    parser.add_argument("--api-key", default=None, help="its API key (default: VOXMILL_API_KEY)")
    parser.add_argument(
        "--timeout", type=float, default=None, help="give up after this many seconds"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    return parser


def _output_and_format(args: argparse.Namespace) -> tuple[Path, str]:
    output: Path | None = args.output
    fmt: str | None = args.format
    if output is None:
        fmt = fmt or "wav"
        return args.document.with_suffix(f".{fmt}"), fmt
    if fmt is None:
        fmt = output.suffix.lstrip(".").lower() or "wav"
        if fmt not in FORMATS:
            raise ConvertError(
                f"cannot tell the audio format from '{output.name}': use a .wav, .flac, .mp3 or "
                ".ogg name, or --format"
            )
    if not output.parent.is_dir():
        raise ConvertError(f"{output.parent}: no such folder for the output file")
    return output, fmt


def cli(argv: list[str] | None = None) -> int:
    """Entry point of ``voxmill convert``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        logging.getLogger().setLevel(logging.INFO)
    stderr = sys.stderr
    try:
        output, fmt = _output_and_format(args)
        data = read_document(args.document)
        api_url = args.api_url or os.environ.get("VOXMILL_API_URL") or None
        api_key = args.api_key or os.environ.get("VOXMILL_API_KEY") or None
        api = remote_api(api_url, api_key) if api_url else embedded_api(api_key)
        started = time.monotonic()
        with api as client:
            outcome = run_conversion(
                client,
                document=args.document,
                data=data,
                output=output,
                fmt=fmt,
                voice=args.voice,
                name=args.name or args.document.name,
                progress=ConversionProgress(stderr, args.document.name),
                poll_s=POLL_S,
                timeout_s=args.timeout,
            )
    except ConvertError as e:
        print(f"voxmill convert: error: {e}", file=stderr)
        return EXIT_FAILED
    except httpx.HTTPError as e:
        print(f"voxmill convert: error: the API connection failed: {e}", file=stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("voxmill convert: interrupted", file=stderr)
        return 130
    print(
        f"wrote {outcome.path}: {outcome.sentences} sentences, {outcome.size_bytes} bytes, "
        f"in {clock(time.monotonic() - started)}",
        file=stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
