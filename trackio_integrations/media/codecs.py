"""The media kinds stored as files: images (PNG), audio (WAV) and video (through ffmpeg).

``encode.py`` turns a point's media values into trackio's JSON and keeps tables and histograms;
each function here returns ``(file bytes, extension)`` for one value, or
the array it is made from, and knows nothing of where the bytes are kept. NumPy, PIL and torch
are imported on first use, never at import time.
"""

from __future__ import annotations

import io
import math
import shutil
import struct
import subprocess
import wave
import zlib
from pathlib import Path
from typing import Any

from trackio_integrations.media.kinds import Audio, Image, Video

# --- images --------------------------------------------------------------------------------------


def image_bytes(image: Image) -> tuple[bytes, str]:
    """(file bytes, extension): a file as it is, anything else as PNG."""
    value = image.value
    if isinstance(value, (str, Path)):
        return _read_file(value, "png")
    return png(image_array(value)), "png"


def image_array(value: Any) -> Any:
    """A uint8 NumPy array HxWxC (C = 1, 2, 3 or 4) from an array, a tensor or a PIL image.

    Arrays are HxW or HxWxC; tensors CxHxW (or HxW, HxWxC). Floats are read as [0, 1].
    A tensor is converted to uint8 on its own device, so only the image's bytes are copied.
    """
    import numpy as np

    if is_torch(value):
        import torch

        tensor = value.detach()
        if tensor.ndim == 3 and (tensor.shape[0] <= 4 or tensor.shape[-1] > 4):
            tensor = tensor.permute(1, 2, 0)  # CxHxW, the usual layout of a tensor
        if tensor.is_floating_point():
            tensor = tensor.nan_to_num(0.0).clamp(0.0, 1.0).mul(255).round_()
        elif tensor.dtype == torch.bool:
            tensor = tensor.to(torch.uint8).mul_(255)
        elif tensor.dtype != torch.uint8:
            tensor = tensor.clamp(0, 255)
        array = tensor.to(torch.uint8).cpu().numpy()
    elif _is_pil(value):
        array = np.asarray(_pil_for_png(value))
    else:
        array = np.asarray(value)
        if array.ndim == 3 and array.shape[-1] > 4 and array.shape[0] <= 4:
            array = array.transpose(1, 2, 0)  # CxHxW; an array is usually HxWxC
        if array.dtype.kind == "f":
            array = (np.nan_to_num(array).clip(0.0, 1.0) * 255.0).round()
        elif array.dtype.kind == "b":
            array = array.astype(np.uint8) * 255
        if array.dtype != np.uint8:
            array = array.clip(0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4) or 0 in array.shape:
        raise ValueError(
            f"an image must be HxW or HxWxC (C in 1..4), or a CxHxW tensor; got shape "
            f"{tuple(array.shape)}"
        )
    return array


def _pil_for_png(image: Any) -> Any:
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if mode == "1":
        return image.convert("L")
    has_alpha = "A" in mode or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


_PNG_COLOUR = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)


def png(array: Any) -> bytes:
    """PNG bytes of a uint8 HxWxC array, lossless.

    Each row is "Sub"-filtered (each byte minus the one a pixel to its left) and deflated with
    zlib's run-length strategy at level 1: fast on noise, and small on images with smooth regions.
    """
    import numpy as np

    height, width, channels = array.shape
    flat = np.ascontiguousarray(array).reshape(height, width * channels)
    rows = np.empty((height, width * channels + 1), dtype=np.uint8)
    rows[:, 0] = 1  # filter type: Sub
    rows[:, 1 : 1 + channels] = flat[:, :channels]
    np.subtract(flat[:, channels:], flat[:, :-channels], out=rows[:, 1 + channels :])
    deflate = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    data = deflate.compress(rows.tobytes()) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOUR[channels], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND")


def _chunk(tag: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


# --- audio ---------------------------------------------------------------------------------------


def audio_bytes(audio: Audio) -> tuple[bytes, str]:
    """(file bytes, extension): a file as it is; samples as 16-bit PCM WAV (or MP3 via ffmpeg)."""
    value = audio.value
    if isinstance(value, (str, Path)):
        return _read_file(value, "wav")
    if not isinstance(audio.sample_rate, int) or audio.sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {audio.sample_rate!r}")
    pcm = pcm16(as_numpy(value))
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    fmt = audio.format or "wav"
    if fmt == "wav":
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(channels)
            wav.setsampwidth(2)
            wav.setframerate(audio.sample_rate)
            wav.writeframes(pcm.tobytes())
        return out.getvalue(), "wav"
    if fmt == "mp3":
        raw = ["-f", "s16le", "-ar", str(audio.sample_rate), "-ac", str(channels)]
        return _ffmpeg([*raw, "-i", "pipe:0", "-f", "mp3"], pcm.tobytes()), "mp3"
    raise ValueError(f"audio format {fmt!r} is not 'wav' or 'mp3'")


def pcm16(samples: Any) -> Any:
    """Samples as int16 (N,) or (N, channels), the way trackio converts them: floats are
    peak-normalised; other integer types are rescaled to 16 bits."""
    import numpy as np

    array = np.asarray(samples)
    if array.ndim == 2 and array.shape[0] in (1, 2) and array.shape[1] > 2:
        array = array.T  # channels first (torchaudio's layout)
    if array.ndim not in (1, 2) or array.size == 0:
        raise ValueError(f"audio must be (samples,) or (samples, channels), got {array.shape}")
    if array.dtype.kind == "f":
        array = np.nan_to_num(array.astype(np.float64))
        peak = float(np.abs(array).max())
        if peak > 0:
            array = array / peak
        return np.ascontiguousarray((array * 32767.0).clip(-32768, 32767).astype(np.int16))
    # Other integer types rescaled to 16 bits, as trackio does.
    shift = {"int16": (1, 1, 0), "int32": (1, 65536, 0), "int8": (256, 1, 0)}
    shift.update(uint8=(257, 1, -32768), uint16=(1, 1, -32768))
    if array.dtype.name in shift:
        times, over, offset = shift[array.dtype.name]
        wide = array.astype(np.int64) * times // over + offset
        return np.ascontiguousarray(wide.clip(-32768, 32767).astype(np.int16))
    raise ValueError(f"audio samples of type {array.dtype} are not supported")


# --- video ---------------------------------------------------------------------------------------


def video_bytes(video: Video) -> tuple[bytes, str]:
    """(file bytes, extension): a file as it is; frames as GIF (PIL), MP4 or WebM (ffmpeg)."""
    value = video.value
    if isinstance(value, (str, Path)):
        return _read_file(value, "mp4")
    frames = video_frames(value)
    fps = video.fps or 24
    fmt = video.format or "gif"
    if fmt == "gif":
        from PIL import Image as PILImage

        if frames.shape[3] == 4:
            frames = frames[..., :3]
        pictures = [PILImage.fromarray(f[..., 0] if f.shape[2] == 1 else f) for f in frames]
        out = io.BytesIO()
        pictures[0].save(
            out,
            format="GIF",
            save_all=True,
            append_images=pictures[1:],
            duration=max(round(1000 / fps), 10),
            loop=0,
        )
        return out.getvalue(), "gif"
    codecs = {
        "mp4": [
            "-vcodec",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "frag_keyframe+empty_moov",
        ]
    }
    codecs["webm"] = ["-vcodec", "libvpx-vp9", "-pix_fmt", "yuv420p"]
    if fmt not in codecs:
        raise ValueError(f"video format {fmt!r} is not 'gif', 'mp4' or 'webm'")
    rgb = frames[..., :3] if frames.shape[3] >= 3 else frames.repeat(3, axis=3)
    _, height, width, _ = rgb.shape
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps)]
    body = [*raw, "-i", "pipe:0", "-an", *codecs[fmt], "-f", fmt]
    return _ffmpeg(body, rgb.tobytes()), fmt


def video_frames(value: Any) -> Any:
    """uint8 frames TxHxWxC from TxCxHxW (or a batch BxTxCxHxW, tiled into a grid)."""
    import numpy as np

    array = as_numpy(value)
    if array.dtype.kind == "f":
        array = (np.nan_to_num(array).clip(0.0, 1.0) * 255.0).round()
    array = array.clip(0, 255).astype(np.uint8) if array.dtype != np.uint8 else array
    if array.ndim == 4:
        array = array[None]
    if array.ndim != 5 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"a video must be TxCxHxW or BxTxCxHxW, got {array.shape}")
    batch, frames, channels, height, width = array.shape
    cols = math.ceil(math.sqrt(batch))
    rows = math.ceil(batch / cols)
    if rows * cols > batch:
        padding = np.zeros((rows * cols - batch, *array.shape[1:]), dtype=np.uint8)
        array = np.concatenate([array, padding])
    grid = array.reshape(rows, cols, frames, channels, height, width).transpose(2, 0, 4, 1, 5, 3)
    return np.ascontiguousarray(grid.reshape(frames, rows * height, cols * width, channels))


def _bundled_ffmpeg() -> str | None:
    """The ffmpeg binary that the ``imageio-ffmpeg`` wheel ships, when it is installed."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:
        return None


def _ffmpeg(arguments: list[str], data: bytes) -> bytes:
    ffmpeg = shutil.which("ffmpeg") or _bundled_ffmpeg()
    if ffmpeg is None:
        raise RuntimeError(
            "this format needs ffmpeg: install it, or `pip install imageio-ffmpeg` (or log a GIF / "
            "WAV instead)"
        )
    command = [ffmpeg, "-y", "-loglevel", "error", *arguments, "pipe:1"]
    done = subprocess.run(command, input=data, capture_output=True, check=False, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {done.stderr.decode(errors='replace')[-300:]}")
    return done.stdout


# --- helpers -------------------------------------------------------------------------------------


def _read_file(path: str | Path, default_ext: str) -> tuple[bytes, str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    return path.read_bytes(), (path.suffix[1:].lower() or default_ext)


def as_numpy(value: Any) -> Any:
    """A NumPy array of ``value`` (a torch tensor is detached and copied to the CPU)."""
    import numpy as np

    if is_torch(value):
        value = value.detach()
        if not value.dtype.is_floating_point or value.dtype.itemsize >= 4:
            return value.cpu().numpy()
        return value.float().cpu().numpy()  # bfloat16 has no NumPy type
    return np.asarray(value)


def is_torch(value: Any) -> bool:
    """Whether ``value`` is a torch tensor (without importing torch)."""
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _is_pil(value: Any) -> bool:
    return any(c.__module__ == "PIL.Image" and c.__name__ == "Image" for c in type(value).__mro__)
