"""Stream text to Voxmill a few words at a time and write the audio as it comes back.

What a voice agent does with a language model's output: send each piece as it is produced, play
each sentence's audio as soon as it arrives. Here the "model" is a text typed out word by word,
and the audio goes to a WAV file (raw PCM in the stream; the header is written at the end).

Usage::

    python examples/stream_client.py --url ws://127.0.0.1:8000/v1/audio/speech/stream \\
        --key "$VOXMILL_API_KEY" --out speech.wav "Hello there. This streams as it is written."

Needs only the ``websockets`` package (``pip install websockets``).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import wave

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

DEFAULT_TEXT = (
    "Streaming speech starts before the text is finished. Each sentence is spoken as soon as it "
    "is complete, and the audio arrives in order. This is the last sentence."
)


def send_words(ws: ClientConnection, text: str, delay_s: float) -> None:
    """Send ``text`` a word at a time (as a language model would), then ``end``."""
    for word in text.split(" "):
        ws.send(json.dumps({"type": "text", "text": word + " "}))
        time.sleep(delay_s)
    ws.send(json.dumps({"type": "end"}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("text", nargs="?", default=DEFAULT_TEXT)
    parser.add_argument("--url", default="ws://127.0.0.1:8000/v1/audio/speech/stream")
    parser.add_argument("--key", default="", help="API key (Authorization: Bearer)")
    parser.add_argument("--voice", default=None)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--out", default="stream.wav", help="WAV file to write")
    parser.add_argument("--word-delay", type=float, default=0.05, help="seconds between words")
    args = parser.parse_args(argv)

    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    start = time.perf_counter()
    first_audio: float | None = None
    pcm = bytearray()
    rate = 0
    with connect(args.url, additional_headers=headers, max_size=None) as ws:
        ws.send(json.dumps({"type": "start", "voice": args.voice, "speed": args.speed}))
        sender = threading.Thread(target=send_words, args=(ws, args.text, args.word_delay))
        sender.start()
        try:
            while True:
                meta = json.loads(ws.recv())
                if meta["type"] == "done":
                    break
                if meta["type"] == "error":
                    print(f"error {meta['code']}: {meta['detail']}", file=sys.stderr)
                    return 1
                frame = ws.recv()  # the sentence's raw PCM (s16le mono)
                assert isinstance(frame, bytes)
                rate = meta["sample_rate"]
                if first_audio is None:
                    first_audio = time.perf_counter() - start
                pcm += frame
                print(f"{meta['offset_ms'] / 1000:7.2f} s  {meta['text']}")
        except ConnectionClosed as e:
            print(f"closed: {e}", file=sys.stderr)
            return 1
        finally:
            sender.join()
    with wave.open(args.out, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate or 22050)
        out.writeframes(bytes(pcm))
    seconds = len(pcm) / 2 / (rate or 22050)
    print(f"first audio after {first_audio or 0:.2f} s; wrote {seconds:.1f} s to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
