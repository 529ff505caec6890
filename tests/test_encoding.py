"""Media values become the bytes and JSON trackio's dashboard reads, whatever form they come in."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import torch
import trackio
from PIL import Image as PILImage

from trackio_integrations import Audio, Histogram, Image, Markdown, Table, Video
from trackio_integrations.media.encode import (
    encode_point,
    encode_value,
    image_array,
    numpy_histogram,
    png,
    torch_histogram,
)


class Files:
    """A ``store`` that keeps what it is given."""

    def __init__(self) -> None:
        self.kept: dict[str, bytes] = {}

    def __call__(self, key: str, data: bytes, extension: str) -> str:
        path = f"p/r/0/{key}-{len(self.kept)}.{extension}"
        self.kept[path] = data
        return path


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_is_lossless_for_every_channel_count(channels: int) -> None:
    pixels = np.random.default_rng(channels).integers(0, 256, (17, 23, channels), dtype=np.uint8)
    decoded = _decode(png(pixels))
    assert decoded.reshape(17, 23, channels).tolist() == pixels.tolist()


def test_images_from_arrays_tensors_pil_and_files_encode_to_the_same_pixels(tmp_path: Path) -> None:
    hwc = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    chw_float = torch.from_numpy(hwc).permute(2, 0, 1).float() / 255
    saved = tmp_path / "x.png"
    PILImage.fromarray(hwc).save(saved)
    for value in (hwc, chw_float, torch.from_numpy(hwc).permute(2, 0, 1), PILImage.fromarray(hwc)):
        assert image_array(value).tolist() == hwc.tolist()
    files = Files()
    image = encode_value("x", Image(saved, caption="from a file"), files)
    assert image == {
        "_type": "trackio.image",
        "file_path": image["file_path"],
        "caption": "from a file",
    }
    assert files.kept[image["file_path"]] == saved.read_bytes()  # a file travels as it is
    grey = image_array(np.zeros((5, 6), dtype=np.uint8))
    assert grey.shape == (5, 6, 1)
    assert image_array(np.ones((4, 4), dtype=bool)).max() == 255
    assert image_array(np.full((2, 2, 3), 2.0)).max() == 255  # floats are read as [0, 1]


def test_a_histogram_matches_numpy_and_leaves_out_non_finite_values() -> None:
    data = np.random.default_rng(1).normal(size=100_000)
    data[::1000] = np.nan
    data[5] = np.inf
    finite = data[np.isfinite(data)]
    expected_counts, expected_edges = np.histogram(finite, bins=64)
    counts, edges = numpy_histogram(data, 64)
    assert sum(counts) == finite.size
    assert np.abs(np.array(counts) - expected_counts).max() <= 2  # rounding at bin edges
    assert np.allclose(edges, expected_edges)
    assert numpy_histogram(np.array([3.0, 3.0]), 4) == ([0, 0, 2, 0], [2.5, 2.75, 3.0, 3.25, 3.5])
    assert numpy_histogram(np.array([np.nan]), 4) == ([], [])
    assert numpy_histogram(np.arange(10), 5)[0] == [2, 2, 2, 2, 2]


def test_a_tensor_histogram_on_its_device_agrees_with_the_numpy_one() -> None:
    tensor = torch.randn(50_000, dtype=torch.float32)
    tensor[7] = float("nan")
    counts, edges = torch_histogram(tensor, 32)  # the path a GPU tensor takes
    reference, reference_edges = numpy_histogram(tensor.numpy(), 32)
    assert sum(counts) == 49_999
    assert np.abs(np.array(counts) - np.array(reference)).max() <= 2
    assert np.allclose(edges, reference_edges)
    half = encode_value("h", Histogram(torch.randn(1000).bfloat16(), num_bins=1000), Files())
    assert len(half["values"]) == 512 and len(half["bins"]) == 513  # at most 512 bins, as trackio


def test_histogram_json_is_trackios() -> None:
    value = encode_value("h", Histogram([1, 2, 2, 3], num_bins=2), Files())
    assert value == {"_type": "trackio.histogram", "bins": [1.0, 2.0, 3.0], "values": [1, 3]}
    given = encode_value(
        "h", Histogram(np_histogram=(np.array([1, 2]), np.array([0, 1, 2]))), Files()
    )
    assert given == {"_type": "trackio.histogram", "bins": [0, 1, 2], "values": [1, 2]}
    with pytest.raises(ValueError):
        Histogram()


def test_tables_from_dataframes_lists_and_dicts_with_image_cells() -> None:
    import pandas as pd

    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    frame = pd.DataFrame(
        {"id": [1, 2], "p": [0.5, float("nan")], "ok": [True, False], "img": [Image(pixels), None]}
    )
    files = Files()
    rows = encode_value("preds", Table(dataframe=frame), files)["_value"]
    assert rows[0]["img"]["_type"] == "trackio.image" and rows[0]["img"]["file_path"] in files.kept
    assert [(r["id"], r["p"], r["ok"], r["img"] if r["id"] == 2 else "x") for r in rows] == [
        (1, 0.5, True, "x"),
        (2, "NaN", False, None),  # NaN travels as trackio sends it
    ]
    by_columns = Table(columns=["a", "b"], data=[[1, "x"], [2, "y", "extra"], [3]])
    assert encode_value("t", by_columns, files)["_value"] == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": "y", "2": "extra"},
        {"a": 3, "b": None},
    ]
    assert encode_value("t", Table(data=[[np.float32(1.5), "s"]]), files)["_value"] == [
        {"0": 1.5, "1": "s"}
    ]
    assert encode_value("t", Table(rows=[{"k": 1}]), files)["_value"] == [{"k": 1}]


def test_audio_is_16_bit_wav_normalised_like_trackio() -> None:
    samples = 0.25 * np.sin(np.linspace(0, 200 * np.pi, 8000))
    files = Files()
    value = encode_value("a", Audio(samples, caption="tone", sample_rate=8000), files)
    with wave.open(io.BytesIO(files.kept[value["file_path"]])) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    assert pcm.max() == 32767  # peak-normalised
    stereo = encode_value(
        "s", Audio(torch.zeros(2, 100), sample_rate=8000), files
    )  # channels first
    with wave.open(io.BytesIO(files.kept[stereo["file_path"]])) as wav:
        assert (wav.getnchannels(), wav.getnframes()) == (2, 100)
    with pytest.raises(ValueError):
        Audio(samples)  # samples need a sample rate, as in trackio


def test_video_frames_become_an_animated_gif_and_a_batch_a_grid() -> None:
    frames = np.random.default_rng(2).integers(0, 256, (2, 5, 3, 8, 10), dtype=np.uint8)
    files = Files()
    value = encode_value("v", Video(frames, fps=5), files)
    gif = PILImage.open(io.BytesIO(files.kept[value["file_path"]]))
    assert (gif.format, gif.n_frames, gif.size) == ("GIF", 5, (20, 8))  # 2 videos side by side


def test_mp4_and_mp3_are_made_by_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")  # the ffmpeg of the imageio-ffmpeg wheel, as on a bare machine
    files = Files()
    video = encode_value("v", Video(np.zeros((4, 3, 16, 16), np.uint8), format="mp4"), files)
    assert files.kept[video["file_path"]][4:8] == b"ftyp"
    sound = encode_value("a", Audio(np.zeros(800), sample_rate=8000, format="mp3"), files)
    assert video["file_path"].endswith(".mp4") and sound["file_path"].endswith(".mp3")
    assert len(files.kept[sound["file_path"]]) > 0


def test_trackios_own_objects_are_read_without_changing_the_call() -> None:
    pixels = np.full((6, 6, 3), 200, dtype=np.uint8)
    files = Files()
    kept = {
        "img": trackio.Image(pixels, caption="theirs"),
        "hist": trackio.Histogram([1.0, 2.0, 3.0], num_bins=3),
        "md": trackio.Markdown("**bold**"),
        "table": trackio.Table(columns=["a"], data=[[1]]),
        "loss": 0.5,
    }
    point: dict[str, Any] = orjson.loads(encode_point(kept, files, lambda k, m: None))
    assert point["img"]["caption"] == "theirs"
    assert _decode(files.kept[point["img"]["file_path"]]).tolist() == pixels.tolist()
    assert point["hist"]["values"] == [1, 1, 1]
    assert point["md"] == {"_type": "trackio.markdown", "_value": "**bold**"}
    assert point["table"] == {"_type": "trackio.table", "_value": [{"a": 1}]}
    assert point["loss"] == 0.5


def test_a_value_that_cannot_be_encoded_drops_only_itself_with_one_warning() -> None:
    warnings: list[tuple[str, str]] = []
    kept = {
        "missing": Image("/no/such/file.png"),
        "bad": Image(np.zeros((5, 5, 7), dtype=np.uint8)),
        "ok": Markdown("fine"),
        "samples": [Image(np.zeros((2, 2), np.uint8)), Image(np.ones((2, 2), np.uint8))],
    }
    point = orjson.loads(encode_point(kept, Files(), lambda key, m: warnings.append((key, m))))
    assert sorted(point) == ["ok", "samples/0", "samples/1"]  # a list: one key per item
    assert [key for key, _ in warnings] == ["media:missing", "media:bad"]
    assert "'missing'" in warnings[0][1] and "file not found" in warnings[0][1]
