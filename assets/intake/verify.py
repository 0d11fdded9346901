"""Checking an item's files against its manifest: presence, size, sha256, and that they decode.

Runs on Dask workers (`verify_items` is what `client.map` ships); reads one file at a time so a
worker's memory holds at most one upload.
"""

from __future__ import annotations

import hashlib
import io
import wave
from dataclasses import dataclass, field

from annobase.object_store import ObjectStore, SymbolicLink
from assets.intake import reasons as r
from assets.intake.manifest import FileSpec, ManifestItem
from assets.intake.reasons import Reason, shorten


@dataclass
class VerifiedFile:
    spec: FileSpec
    facts: dict = field(default_factory=dict)


@dataclass
class ItemVerdict:
    item: ManifestItem
    files: list[VerifiedFile]
    reasons: list[Reason]

    @property
    def accepted(self) -> bool:
        return not self.reasons


def check_text(data: bytes) -> dict:
    text = data.decode("utf-8")
    return {"text_chars": len(text)}


# beyond any recording format, and within the catalog's INTEGER: a header claiming more is not audio
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 64


def check_wav(data: bytes) -> dict:
    """A PCM WAV whose header and sample data agree; `wave` itself refuses non-PCM formats."""
    with wave.open(io.BytesIO(data)) as audio:
        channels, width, rate, frames = (
            audio.getnchannels(),
            audio.getsampwidth(),
            audio.getframerate(),
            audio.getnframes(),
        )
        samples = audio.readframes(frames)
    if frames == 0 or rate <= 0:
        raise ValueError("no audio frames")
    if rate > MAX_SAMPLE_RATE or channels > MAX_CHANNELS:
        raise ValueError(f"{rate} Hz × {channels} channels is no recording (at most {MAX_SAMPLE_RATE} Hz)")
    if len(samples) != frames * width * channels:
        raise ValueError(
            f"header announces {frames} frames but the data holds {len(samples) // (width * channels)}"
        )
    return {"audio_seconds": frames / rate, "sample_rate": rate, "channels": channels}


def check_image(data: bytes) -> dict:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image_format = image.format
        image.verify()
    if image_format not in ("PNG", "JPEG"):
        raise ValueError(f"image format {image_format} is neither PNG nor JPEG")
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # verify() alone misses truncated pixel data
        return {"image_width": image.width, "image_height": image.height}


DECODERS = {
    "text": (check_text, r.NOT_UTF8),
    "audio": (check_wav, r.UNDECODABLE_AUDIO),
    "image": (check_image, r.UNDECODABLE_IMAGE),
}


def verify_file(
    store: ObjectStore, spec: FileSpec, max_file_bytes: int, max_text_bytes: int | None = None
) -> tuple[dict, Reason | None]:
    def reject(code: str, detail: str):
        return {}, Reason(code, f"{spec.path}: {detail}", part=spec.part, path=spec.path)

    if spec.part == "text" and max_text_bytes is not None and spec.bytes > max_text_bytes:
        return reject(r.TEXT_TOO_LARGE, f"{spec.bytes} bytes of text exceeds the limit of {max_text_bytes}")
    try:
        # read only a file of the promised size and within the limit: anything else is rejected unread
        size, data = store.get_within(spec.upload_key, limit=min(spec.bytes, max_file_bytes))
    except SymbolicLink:
        return reject(r.SYMBOLIC_LINK, "a symbolic link, not an uploaded file: never followed")
    except KeyError:
        return reject(r.FILE_MISSING, "listed in the manifest but not uploaded")
    if size != spec.bytes:
        return reject(r.SIZE_MISMATCH, f"uploaded file has {size} bytes, the manifest says {spec.bytes}")
    if size > max_file_bytes:
        return reject(r.FILE_TOO_LARGE, f"{size} bytes exceeds the limit of {max_file_bytes}")
    if size == 0:
        return reject(r.EMPTY_FILE, "the file is empty")
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        return reject(r.SHA256_MISMATCH, f"sha256 is {digest}, the manifest says {spec.sha256}")
    decode, failure_code = DECODERS[spec.part]
    try:
        return decode(data), None
    except Exception as error:  # any decoder failure means the same thing: unusable content
        return reject(
            failure_code, f"does not decode as {spec.part}: {type(error).__name__}: {shorten(str(error))}"
        )


def verify_items(
    items: list[ManifestItem], store: ObjectStore, max_file_bytes: int, max_text_bytes: int | None = None
) -> list[ItemVerdict]:
    """Verify every file of every item; an item is accepted only when all of its files are."""
    verdicts = []
    for item in items:
        files, reasons = [], []
        for spec in item.files:
            facts, reason = verify_file(store, spec, max_file_bytes, max_text_bytes)
            if reason:
                reasons.append(Reason(reason.code, reason.detail, item.item_id, reason.part, reason.path))
            else:
                files.append(VerifiedFile(spec, facts))
        verdicts.append(ItemVerdict(item, files, reasons))
    return verdicts
