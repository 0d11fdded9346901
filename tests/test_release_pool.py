"""The content-addressed release pool: a version costs what changed, every version stays verifiable,
and a pool object is written only from verified bytes and trusted by its name only until `verify`.

Releases are cut here with `write_release` (the asset's own writer, its Croissant card and quality
report) on the real store (local directory and SeaweedFS) and the Dask cluster, from uploads put in
the store by hand, so the versions' contents can be chosen: items added, answers changed."""

import hashlib
import io
import json

import pandas as pd
import pytest
from distributed import Client
from flow_helpers import delete_behind_annobase

from annobase.object_store import ObjectStore
from assets.release.croissant import validate_croissant
from assets.release.object_pool import pool_key, pool_path
from assets.release.publishing import PoolObjectAltered, latest_manifest
from assets.release.release_manifest import verify_release
from assets.release.signing import generate_key_pem, load_signing_key
from benchmarks import publish

INDUSTRY = publish.INDUSTRY
DATASET = f"datasets/{INDUSTRY}/"


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "release.pem"
    path.write_bytes(generate_key_pem())
    return load_signing_key(str(path))


@pytest.fixture
def client(dask_cluster):
    with Client(dask_cluster) as client:
        yield client


def uploaded(store: ObjectStore, numbers: range) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items `numbers` of one client, alternately text and image, their files uploaded: the rows and
    the media uploads as `gather_release` hands them on."""
    rows, uploads = [], []
    for n in numbers:
        modality = ("text", "image")[n % 2]
        delivery, item_id = f"d-{n // 10:03d}", f"i-{n:04d}"
        item_key = f"datong-coal/{delivery}/{item_id}"
        text = f"巷道 {n} 顶板有裂缝" if modality == "text" else None
        if modality == "image":
            data = b"\x89PNG" + hashlib.sha256(str(n).encode()).digest() * (n % 7 + 1)
            upload_key = f"uploads/datong-coal/{delivery}/items/{item_id}.PNG"
            store.put(upload_key, data)
            uploads.append((item_key, "image", upload_key, hashlib.sha256(data).hexdigest(), len(data)))
        rows.append(publish.item_row(item_key, "datong-coal", delivery, item_id, modality, text))
    items = pd.DataFrame(rows)
    items["batch_id"] = "b-" + items.delivery_id + "-" + items.modality
    return items, pd.DataFrame(uploads, columns=["item_key", "part", "upload_key", "sha256", "bytes"])


def release(store, items, uploads, key, client) -> dict:
    files = publish.release(store, items, uploads, publish.batch_quality(items), key, client)
    manifest = latest_manifest(store, INDUSTRY)
    return {"files": files, "manifest": manifest, "release": manifest["release"]}


def pool(store) -> dict[str, int]:
    return {obj.key: obj.size for obj in store.list(DATASET + "objects/")}


def expected_pool_keys(items: pd.DataFrame, uploads: pd.DataFrame) -> set[str]:
    """Where the items' files lie: each media upload and each text under its content's sha256."""
    paths = {pool_path(sha, ".png") for sha in uploads.sha256}
    paths |= {pool_path(hashlib.sha256(t.encode()).hexdigest(), ".txt") for t in items.text.dropna()}
    return {DATASET + path[3:] for path in paths}


def flip_a_byte(store, key: str) -> None:
    data = bytearray(store.get(key))
    data[len(data) // 2] ^= 0x01
    store.put(key, bytes(data))  # annobase writes the pool with put_if_absent only: a tamperer does not


def test_a_second_version_pools_only_its_new_files_and_both_verify(store, key, client, tmp_path):
    first_items, first_uploads = uploaded(store, range(0, 40))
    v1 = release(store, first_items, first_uploads, key, client)
    assert v1["release"] == f"{DATASET}v0001"
    after_v1 = pool(store)
    assert set(after_v1) == expected_pool_keys(first_items, first_uploads)
    assert v1["files"].pooled == len(after_v1) == 40
    # the version itself holds its documents only
    assert {obj.key[len(v1["release"]) + 1 :] for obj in store.list(v1["release"] + "/")} == {
        "data/items.parquet",
        "croissant.json",
        "quality_report.json",
        "MANIFEST.json",
        "MANIFEST.json.sig",
    }
    v1_manifest = store.get(f"{v1['release']}/MANIFEST.json")

    new_items, new_uploads = uploaded(store, range(40, 46))
    items = pd.concat([first_items, new_items], ignore_index=True)
    items.loc[items.modality == "text", "label"] = ["normal"] * 3 + ["hazard"] * 20  # 3 labels changed
    items.loc[1, "boxes_json"] = json.dumps([{"x": 1, "y": 1, "width": 5, "height": 5, "label": "normal"}])
    uploads = pd.concat([first_uploads, new_uploads], ignore_index=True)
    v2 = release(store, items, uploads, key, client)

    assert v2["release"] == f"{DATASET}v0002"
    added = set(pool(store)) - set(after_v1)
    assert added == expected_pool_keys(new_items, new_uploads) and v2["files"].pooled == 6
    assert all(pool(store)[key] == size for key, size in after_v1.items())
    assert store.get(f"{v1['release']}/MANIFEST.json") == v1_manifest
    assert store.get(f"{DATASET}LATEST") == b"v0002"
    for version in (v1, v2):
        result = verify_release(store, version["release"], key.public_key)
        assert result.ok and result.checked_files == len(version["manifest"]["files"])
    rows = pd.read_parquet(io.BytesIO(store.get(f"{v2['release']}/data/items.parquet")))
    assert (rows.label == "normal").sum() == 3
    named = rows.image_path.where(rows.modality == "image", rows.text_path)
    assert named.str.startswith("../objects/sha256/").all()
    media = [entry for entry in v2["manifest"]["files"] if entry["path"].endswith(".png")]
    assert len(media) == 23 and all(entry["intake_sha256"] == entry["sha256"] for entry in media)

    # the card follows the names too: a copy of datasets/{industry}/ reads offline
    local = tmp_path / "copy"
    for obj in store.list(DATASET):
        target = local / obj.key[len(DATASET) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.get(obj.key))
    assert validate_croissant(local / "v0002" / "croissant.json") == []
    card = json.loads((local / "v0002" / "croissant.json").read_text())
    for entry in card["distribution"][1:]:
        data = (local / "v0002" / entry["contentUrl"]).resolve().read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_tampering_a_pool_object_fails_every_version_that_names_it(store, key, client):
    first_items, first_uploads = uploaded(store, range(0, 10))
    v1 = release(store, first_items, first_uploads, key, client)
    new_items, new_uploads = uploaded(store, range(10, 12))
    items = pd.concat([first_items, new_items], ignore_index=True)
    v2 = release(store, items, pd.concat([first_uploads, new_uploads], ignore_index=True), key, client)

    shared = pool_path(first_uploads.sha256.iloc[0], ".png")
    flip_a_byte(store, pool_key(v1["release"], shared))
    for version in (v1, v2):
        mismatch = verify_release(store, version["release"], key.public_key).first_mismatch
        assert mismatch.startswith(f"{shared}: sha256 is ")
    flip_a_byte(store, pool_key(v1["release"], shared))  # back as it was
    assert verify_release(store, v1["release"], key.public_key).ok

    only_v2 = pool_path(new_uploads.sha256.iloc[0], ".png")
    flip_a_byte(store, pool_key(v2["release"], only_v2))
    assert verify_release(store, v1["release"], key.public_key).ok
    assert verify_release(store, v2["release"], key.public_key).first_mismatch.startswith(
        f"{only_v2}: sha256 is "
    )
    delete_behind_annobase(store, pool_key(v1["release"], shared))
    assert verify_release(store, v1["release"], key.public_key).first_mismatch == f"missing: {shared}"


def test_changed_uploads_are_withheld_and_never_pooled(store, key, client):
    items, uploads = uploaded(store, range(0, 8))
    changed, deleted = uploads.iloc[0], uploads.iloc[1]
    store.put(changed.upload_key, b"changed behind annobase")
    delete_behind_annobase(store, deleted.upload_key)

    v1 = release(store, items, uploads, key, client)
    withheld = {entry["item_key"]: entry["reason"] for entry in v1["manifest"]["lineage"]["withheld_items"]}
    assert withheld[changed.item_key].startswith("sha256_mismatch")
    assert withheld[deleted.item_key].startswith("upload_missing") and len(withheld) == 2
    # every pool object's name is its content: the changed bytes were hashed and never written
    for pool_object in pool(store):
        assert hashlib.sha256(store.get(pool_object)).hexdigest() in pool_object
    assert hashlib.sha256(b"changed behind annobase").hexdigest() not in " ".join(pool(store))
    named = {entry["path"] for entry in v1["manifest"]["files"]}
    assert pool_path(changed.sha256, ".png") not in named and pool_path(deleted.sha256, ".png") not in named
    assert verify_release(store, v1["release"], key.public_key).ok


def test_an_existing_pool_object_is_trusted_by_its_name_then_verify_checks_it(store, key, client):
    """A pool object already at a content address is not written again (put_if_absent); publishing
    trusts its name, `verify` re-hashes it. One of another size than its address names stops the
    publish."""
    items, uploads = uploaded(store, range(0, 6))
    planted = pool_key(f"{DATASET}v0001", pool_path(uploads.sha256.iloc[0], ".png"))
    store.put(planted, b"x" * int(uploads.bytes.iloc[0]))  # the right size, not the bytes
    v1 = release(store, items, uploads, key, client)
    assert v1["files"].pooled == 5
    assert store.get(planted) == b"x" * int(uploads.bytes.iloc[0])
    assert "sha256 is" in verify_release(store, v1["release"], key.public_key).first_mismatch

    more_items, more_uploads = uploaded(store, range(6, 8))
    wrong_size = pool_key(f"{DATASET}v0002", pool_path(more_uploads.sha256.iloc[0], ".png"))
    store.put(wrong_size, b"short")
    with pytest.raises(PoolObjectAltered, match="holds 5 bytes"):
        release(
            store,
            pd.concat([items, more_items], ignore_index=True),
            pd.concat([uploads, more_uploads], ignore_index=True),
            key,
            client,
        )
    assert store.get(f"{DATASET}LATEST") == b"v0001"
