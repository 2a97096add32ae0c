"""The transformers VITS family: a tiny random VitsModel through the real loading and batching."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from contract.messages import SynthesisParams
from handlers.backends.base import VoiceParams
from handlers.backends.hf_vits import HfVitsBackend, keep_durations_in_fp32
from handlers.local_context import LocalContext
from handlers.speech import SpeechService, parse_request
from handlers.voices import load_backend
from handlers.voxmill_handler import VoxmillHandler
from synthesis.inprocess import InProcessSynthesizer
from voices.marbuild import BuildError, build, stage_transformers

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_vits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised VitsModel and its tokenizer, written by save_pretrained."""
    folder = tmp_path_factory.mktemp("tiny-vits")
    symbols = ["<pad>", *" abcdefghijklmnopqrstuvwxyz'.,?!-"]
    (folder / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(symbols)}))
    tokenizer = transformers.VitsTokenizer(
        str(folder / "vocab.json"), phonemize=False, pad_token="<pad>", unk_token="<pad>"
    )
    config = transformers.VitsConfig(
        vocab_size=len(symbols),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        ffn_dim=32,
        flow_size=16,
        spectrogram_bins=33,
        upsample_initial_channel=16,
        upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
        prior_encoder_num_flows=1,
        prior_encoder_num_wavenet_layers=1,
        duration_predictor_num_flows=1,
        duration_predictor_filter_channels=16,
        posterior_encoder_num_wavenet_layers=1,
        depth_separable_num_layers=1,
        sampling_rate=16000,
    )
    torch.manual_seed(0)
    transformers.VitsModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_batch_keeps_each_items_length_and_audio(tiny_vits: Path) -> None:
    backend = HfVitsBackend.load(tiny_vits)
    texts = ["hello world", "a much longer sentence to make the batch pad", "hi"]
    ids = [backend.prepare(t)[0] for t in texts]
    quiet = VoiceParams(noise_scale=0.0, noise_w=0.0)
    together = backend.infer(ids, quiet)
    for seq, batched in zip(ids, together, strict=True):
        (alone,) = backend.infer([seq], quiet)
        assert len(batched) == len(alone)
        # Only the decoder's receptive field at the very end sees the batch's padding.
        head = len(alone) // 2
        assert np.max(np.abs(batched[:head] - alone[:head])) < 1e-3
    assert len(together[1]) > len(together[2])


def test_speed_is_honoured(tiny_vits: Path) -> None:
    backend = HfVitsBackend.load(tiny_vits)
    (seq,) = backend.prepare("the same words at two speeds")
    quiet = VoiceParams(noise_scale=0.0, noise_w=0.0)
    (normal,) = backend.infer([seq], quiet)
    # A random model predicts ~1-frame durations, so slowing down is what shows the rate.
    (slow,) = backend.infer([seq], VoiceParams(speed=0.5, noise_scale=0.0, noise_w=0.0))
    assert len(slow) > 1.4 * len(normal)


def test_staged_voice_runs_through_the_handler(tiny_vits: Path, tmp_path: Path) -> None:
    voice = tmp_path / "tiny"
    stage_transformers("tiny", tiny_vits, voice)
    assert isinstance(load_backend(voice), HfVitsBackend)
    handler = VoxmillHandler()
    handler.initialize(LocalContext(voice, {"handler": {"max_batch_items": 4}}))
    ctx = LocalContext(voice)
    replies = handler.handle([{"body": {"text": "one"}}, {"body": {"text": ""}}], ctx)
    assert ctx.status(0) == 200 and ctx.status(1) == 400
    with wave.open(io.BytesIO(replies[0])) as w:
        assert w.getframerate() == 16000 and w.getnframes() > 0


def test_build_mar_and_serve_in_process(tiny_vits: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    config = Path("model-store/profiles/cpu.yaml")
    mar = build("tiny", export_dir=store, model_config=config, hf_dir=tiny_vits)
    assert mar.name == "tiny.mar"
    synth = InProcessSynthesizer(store, tmp_path / "work")
    assert synth.voices() == ["tiny"]
    audio = synth.synthesize("tiny", "hello there", SynthesisParams())
    assert audio.sample_rate == 16000 and len(audio.samples) > 0


def test_build_refuses_a_folder_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"config\.json"):
        stage_transformers("x", tmp_path, tmp_path / "out")


def test_an_unknown_precision_is_refused(tiny_vits: Path) -> None:
    with pytest.raises(ValueError, match="precision must be one of fp32, fp16, bf16"):
        HfVitsBackend.load(tiny_vits, precision="fp8")


def test_the_cpu_runs_full_precision_whatever_is_configured(tiny_vits: Path) -> None:
    backend = HfVitsBackend.load(tiny_vits, precision="bf16")
    assert next(backend.model.parameters()).dtype == torch.float32


def test_half_precision_keeps_the_duration_predictor_in_fp32(tiny_vits: Path) -> None:
    model = transformers.VitsModel.from_pretrained(str(tiny_vits), dtype=torch.bfloat16).eval()
    keep_durations_in_fp32(model)
    assert next(model.duration_predictor.parameters()).dtype == torch.float32
    assert next(model.decoder.parameters()).dtype == torch.bfloat16
    ids = torch.tensor([[3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14]])
    with torch.inference_mode():
        out = model(input_ids=ids)
    assert out.waveform.dtype == torch.bfloat16
    assert torch.isfinite(out.waveform.float()).all() and (out.sequence_lengths > 0).all()


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_an_mms_size_voice_speaks_a_batch_in_half_precision(
    tiny_vits: Path, tmp_path: Path, precision: str
) -> None:
    """Regression: fp16 failed with "Discriminant has negative values" on an H200."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    folder = tmp_path / "mms"
    torch.manual_seed(1)
    config = transformers.VitsConfig(vocab_size=35)  # the MMS-TTS architecture
    transformers.VitsModel(config).save_pretrained(folder)
    for name in ("vocab.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_vits / name).exists():
            (folder / name).write_bytes((tiny_vits / name).read_bytes())
    backend = HfVitsBackend.load(folder, gpu_id=0, precision=precision)
    texts = [f"sentence number {n}, spoken in a batch of sixty four." for n in range(64)]
    waves = backend.infer([backend.prepare(t)[0] for t in texts], VoiceParams())
    assert len(waves) == 64
    assert all(len(w) > 0 and np.isfinite(w).all() for w in waves)


@pytest.mark.gpu
@pytest.mark.parametrize(("precision", "dtype"), [("fp16", "float16"), ("bf16", "bfloat16")])
def test_runs_on_the_gpu_in_half_precision(tiny_vits: Path, precision: str, dtype: str) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    backend = HfVitsBackend.load(tiny_vits, gpu_id=0, precision=precision)
    assert backend.device.type == "cuda"
    assert next(backend.model.parameters()).dtype == getattr(torch, dtype)
    (seq,) = backend.prepare("on the gpu")
    (audio,) = backend.infer([seq], VoiceParams())
    assert len(audio) > 0 and np.isfinite(audio).all()


def test_durations_give_words_inside_the_audio(tiny_vits: Path) -> None:
    backend = HfVitsBackend.load(tiny_vits)
    service = SpeechService(backend)
    request = parse_request({"text": "one two three. four five."}, max_text_chars=500)

    (timed,) = service.synthesize_timed([request])

    assert timed.timings is not None
    words = timed.timings.words
    assert [w.text for w in words] == ["one", "two", "three", "four", "five"]
    length_ms = 1000 * len(timed.audio) / backend.sample_rate
    starts = [w.start_ms for w in words]
    assert starts == sorted(starts)
    assert all(w.start_ms <= w.end_ms <= length_ms + 1 for w in words)
    wave, samples = backend.infer_timed(backend.prepare("one two"), VoiceParams())[0]
    assert int(samples.sum()) == len(wave), "durations add up to the audio's length"
