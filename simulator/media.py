"""Synthetic audio and images sent by the simulated clients (outside world).

The files are real (a PCM WAV any decoder opens, PNG/JPEG any viewer opens) but their content is
only a stand-in: the truth an annotator would give is returned next to them (the transcript a WAV
was made from, the boxes drawn into an image).
"""

from __future__ import annotations

import io
import random
import wave

import numpy as np
from PIL import Image, ImageDraw

SECONDS_PER_CHAR = 0.3

# distinct, saturated colours, so each shape stands out from the grey noisy background
_PALETTE = (
    (220, 40, 40),
    (40, 160, 60),
    (40, 80, 220),
    (240, 200, 30),
    (160, 50, 200),
    (20, 200, 210),
    (250, 130, 20),
)


def _numpy_rng(rng: random.Random) -> np.random.Generator:
    return np.random.default_rng(rng.getrandbits(64))


def make_wav(text: str, rng: random.Random, sample_rate: int = 16000) -> bytes:
    """16-bit mono PCM, SECONDS_PER_CHAR per character: one tone per character over faint noise.

    The tone's pitch follows the character, so the same text always sounds the same.
    """
    per_char = int(round(SECONDS_PER_CHAR * sample_rate))
    t = np.arange(per_char) / sample_rate
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)  # 20 ms ramps: no clicks between tones
    noise = _numpy_rng(rng).normal(0.0, 0.02, per_char * len(text))
    signal = np.empty(per_char * len(text))
    for i, char in enumerate(text):
        tone = np.sin(2 * np.pi * (180 + ord(char) % 700) * t) if char.isalnum() else 0.0
        signal[i * per_char : (i + 1) * per_char] = 0.5 * fade * tone
    pcm = (np.clip(signal + noise, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return buffer.getvalue()


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _draw_scene(
    rng: random.Random, labels: list[str], width: int, height: int
) -> tuple[Image.Image, list[dict]]:
    """1-4 non-overlapping shapes of distinct colours on noise; boxes in Label Studio percent units."""
    if not labels:
        raise ValueError("an image needs at least one label to draw")
    # grey 4x4-pixel grain: visibly noisy, yet a PNG of it stays in the tens of kilobytes
    grain = _numpy_rng(rng).normal(0.0, 14.0, (-(-height // 4), -(-width // 4), 1))
    grain = grain.repeat(4, axis=0).repeat(4, axis=1)[:height, :width]
    background = np.array([104.0, 108.0, 112.0]) + grain
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    colours = rng.sample(_PALETTE, 4)
    placed: list[tuple[int, int, int, int]] = []
    boxes: list[dict] = []
    for colour in colours[: rng.randint(1, 4)]:
        for _ in range(50):  # rejection sampling; a crowded image simply keeps fewer shapes
            w = rng.randint(width // 8, width * 2 // 5)
            h = rng.randint(height // 8, height * 2 // 5)
            x0, y0 = rng.randint(0, width - w), rng.randint(0, height - h)
            rect = (x0, y0, x0 + w, y0 + h)
            if not any(_overlaps(rect, other) for other in placed):
                break
        else:
            continue
        placed.append(rect)
        # PIL's bounds are inclusive: the shape covers exactly pixels x0..x0+w-1
        shape = (rect[0], rect[1], rect[2] - 1, rect[3] - 1)
        if rng.random() < 0.5:
            draw.rectangle(shape, fill=colour)
        else:
            draw.ellipse(shape, fill=colour)
        boxes.append(
            {
                "x": round(100 * x0 / width, 4),
                "y": round(100 * y0 / height, 4),
                "width": round(100 * w / width, 4),
                "height": round(100 * h / height, 4),
                "label": rng.choice(labels),
            }
        )
    return image, boxes


def _encoded(
    rng: random.Random, labels: list[str], width: int, height: int, **save
) -> tuple[bytes, list[dict]]:
    image, boxes = _draw_scene(rng, labels, width, height)
    buffer = io.BytesIO()
    image.save(buffer, **save)
    return buffer.getvalue(), boxes


def make_png(
    rng: random.Random, labels: list[str], width: int = 320, height: int = 240
) -> tuple[bytes, list[dict]]:
    """A real PNG and its true boxes `{"x", "y", "width", "height", "label"}` (percent of the image)."""
    return _encoded(rng, labels, width, height, format="PNG")


def make_jpg(
    rng: random.Random, labels: list[str], width: int = 320, height: int = 240
) -> tuple[bytes, list[dict]]:
    """As make_png, encoded as JPEG (what phone cameras deliver)."""
    return _encoded(rng, labels, width, height, format="JPEG", quality=90)
