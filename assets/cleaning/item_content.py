"""What a Dask worker reads of each item for cleaning: its text, masked, and its image's perceptual
hash. Apart from the asset's module, so a worker does not import dagster to run it."""

from annobase.object_store import ObjectStore
from assets.cleaning.near_duplicates import image_phash
from assets.cleaning.pii import mask_pii


def read_item_content(
    items: list[dict], store: ObjectStore, mask: bool, segmenter: bool = False
) -> list[dict]:
    """On a Dask worker: each item's text (masked when `mask`, names by jieba too with `segmenter`)
    and its image's perceptual hash."""
    prepared = []
    for item in items:
        text, findings, phash = None, 0, None
        if item.get("text_key"):
            text = store.get(item["text_key"]).decode("utf-8")
            if mask:
                masked = mask_pii(text, segmenter)
                text, findings = masked.text, len(masked.found)
        if item.get("image_key"):
            phash = image_phash(store.get(item["image_key"]))
        prepared.append({"item_key": item["item_key"], "text": text, "pii_masked": findings, "phash": phash})
    return prepared
