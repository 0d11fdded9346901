"""Published industry datasets end to end: only publishable data that passed the gate, signed and
verifiable, documented (Croissant, GB/T 36344 report), traceable to the uploaded bytes, immutable,
and never half-published."""

import hashlib
import json

import pytest
from flow_helpers import delete_behind_annobase, operator_env

from assets.release.croissant import validate_croissant
from assets.release.object_pool import is_pool_path, pool_key
from assets.release.release_manifest import verify_release
from assets.release.signing import load_signing_key


def named_files(store, release: str) -> dict[str, str]:
    """Pool path -> store key of every media and text file the release's manifest names."""
    manifest = json.loads(store.get(f"{release}/MANIFEST.json"))
    return {e["path"]: pool_key(release, e["path"]) for e in manifest["files"] if is_pool_path(e["path"])}


def pool_contents(store, industry: str) -> set[str]:
    """The sha256 of every object in the industry's pool, from their names (`verify` checks them)."""
    return {obj.key.rsplit("/", 1)[1].split(".")[0] for obj in store.list(f"datasets/{industry}/objects/")}


def delivery_hashes(base, partition: str) -> set[str]:
    """The sha256 of a delivery's media uploads and of its cleaned texts: what a release would pool."""
    raw = base.catalog.read_partition("raw_items", partition)
    clean = base.catalog.read_partition("clean_items", partition)
    texts = {hashlib.sha256(text.encode()).hexdigest() for text in clean.text.dropna()}
    return set(raw[raw.part != "text"].sha256) | texts


def test_only_publishable_gated_data_is_released_signed_and_documented(base, signing, tmp_path):
    base.deliver_and_annotate(1, "jinneng-mine-safety", "d-rel-001", "text", 12)
    base.deliver_and_annotate(2, "jinneng-mine-safety", "d-rel-002", "image", 8, license="private")
    base.deliver_and_annotate(3, "shanxi-coal-grid", "d-rel-001", "speech", 6)
    base.deliver_and_annotate(4, "shanxi-coal-grid", "d-rel-002", "text", 6, license="private")

    published = base.publish("energy")
    assert published["released"] and published["version"] == "v0001"
    release = published["release"]
    rows = base.release_items(release)
    assert set(rows.delivery_id.astype(str) + "@" + rows.client_id) == {
        "d-rel-001@jinneng-mine-safety",
        "d-rel-001@shanxi-coal-grid",
    }
    assert len(rows) == 18 and rows.item_key.is_unique
    listed = [obj.key for obj in base.store.list(release + "/")]
    assert not [key for key in listed if "d-rel-002" in key], "private data must never enter a release"
    private = delivery_hashes(base, "jinneng-mine-safety/d-rel-002") | delivery_hashes(
        base, "shanxi-coal-grid/d-rel-002"
    )
    assert private and not private & pool_contents(base.store, "energy"), "nor the pool"
    assert base.store.get("datasets/energy/LATEST") == b"v0001"

    key = load_signing_key(signing.key_path)
    assert verify_release(base.store, release, key.public_key).ok
    manifest = json.loads(base.store.get(f"{release}/MANIFEST.json"))
    assert manifest["signing_key_fingerprint"] == key.fingerprint
    assert {d["client_id"] for d in manifest["lineage"]["deliveries"]} == {
        "jinneng-mine-safety",
        "shanxi-coal-grid",
    }
    assert manifest["lineage"]["batches"] and manifest["lineage"]["dagster_run_id"]

    report = json.loads(base.store.get(f"{release}/quality_report.json"))
    assert report["scores"]["text_accuracy"]["threshold"] == 0.95
    assert report["scores"]["speech_accuracy"]["meets_threshold"] is True
    assert set(report["gbt_36344_2018"]) == {
        "normativity",
        "completeness",
        "accuracy",
        "consistency",
        "timeliness",
        "accessibility",
    }
    assert report["gbt_36344_2018"]["completeness"]["value"] == 1.0

    local = tmp_path / "energy"  # a copy of the version and the pool files it names
    for obj in base.store.list("datasets/energy/"):
        target = local / obj.key[len("datasets/energy/") :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base.store.get(obj.key))
    assert validate_croissant(local / "v0001" / "croissant.json") == []


def test_a_release_is_cut_only_on_change_and_never_rewritten(base, signing):
    base.deliver_and_annotate(5, "yungang-grottoes", "d-001", "text", 8)
    first = base.publish("cultural_heritage")
    manifest_v1 = base.store.get(f"{first['release']}/MANIFEST.json")
    again = base.publish("cultural_heritage")
    assert not again["released"] and "nothing changed" in again["reason"]

    pooled_v1 = pool_contents(base.store, "cultural_heritage")
    base.deliver_and_annotate(6, "yungang-grottoes", "d-002", "text", 8)
    second = base.publish("cultural_heritage")
    assert second["version"] == "v0002" and second["items"] == 16
    assert base.store.get(f"{first['release']}/MANIFEST.json") == manifest_v1
    assert base.store.get("datasets/cultural_heritage/LATEST") == b"v0002"
    # the second version pooled the new delivery's texts only, and named the first's again
    new = delivery_hashes(base, "yungang-grottoes/d-002")
    assert (
        pool_contents(base.store, "cultural_heritage") - pooled_v1 == new
        and second["files_added_to_pool"] == 8
    )
    assert set(named_files(base.store, first["release"])) < set(named_files(base.store, second["release"]))
    key = load_signing_key(signing.key_path)
    for release in (first["release"], second["release"]):
        assert verify_release(base.store, release, key.public_key).ok


def test_medical_text_is_published_masked(base):
    delivery = base.deliver_and_annotate(7, "xiehe-clinic", "d-med-001", "text", 20)
    release = base.publish("medical")["release"]
    published = "".join(
        base.store.get(key).decode()
        for path, key in named_files(base.store, release).items()
        if path.endswith(".txt")
    ) + " ".join(base.release_items(release).text)
    planted = [pii["value"] for truth in delivery.truth.values() for pii in truth["pii"] if pii["valid"]]
    assert planted and not [value for value in planted if value in published]


def test_uploads_changed_or_deleted_after_intake_withhold_their_items_only(base, signing):
    """A release signs only bytes intake verified: an image overwritten after QA and one deleted by its
    client keep those two items out (their files too), with the reason in the quality report and the
    manifest's lineage; every other item is released and the release verifies."""
    base.deliver_and_annotate(9, "datong-schools", "d-chg-001", "image", 6)
    partition = "datong-schools/d-chg-001"
    kept = base.catalog.read_partition("clean_items", partition)
    raw = base.catalog.read_partition("raw_items", partition)
    changed, deleted = kept[kept.status == "kept"].item_key.iloc[:2]
    upload = raw.set_index("item_key").upload_key
    base.store.put(upload[changed], base.store.get(upload[changed]) + b"changed behind annobase")
    delete_behind_annobase(base.store, upload[deleted])

    published = base.publish("education")
    release = published["release"]
    rows = base.release_items(release)
    assert set(rows.item_key) == set(kept[kept.status == "kept"].item_key) - {changed, deleted}
    assert rows.files_verified.all() and published["items_withheld"] == 2
    intake = raw.set_index("item_key").sha256
    named = "".join(named_files(base.store, release))
    assert intake[changed] not in named and intake[deleted] not in named
    # a pool object is written only from the bytes intake verified: the changed bytes never were
    assert hashlib.sha256(base.store.get(upload[changed])).hexdigest() not in pool_contents(
        base.store, "education"
    )
    report = json.loads(base.store.get(f"{release}/quality_report.json"))
    reasons = {entry["item_key"]: entry["reason"] for entry in report["withheld"]["list"]}
    assert reasons[changed].startswith("sha256_mismatch") and reasons[deleted].startswith("upload_missing")
    assert report["gbt_36344_2018"]["accessibility"]["value"] == pytest.approx(len(rows) / (len(rows) + 2))
    manifest = json.loads(base.store.get(f"{release}/MANIFEST.json"))
    assert {entry["item_key"] for entry in manifest["lineage"]["withheld_items"]} == {changed, deleted}
    media = [entry for entry in manifest["files"] if entry["path"].endswith(".png")]
    assert media and all(entry["intake_sha256"] == entry["sha256"] for entry in media)
    assert verify_release(base.store, release, load_signing_key(signing.key_path).public_key).ok


class FailingStore:
    """The S3 server going away mid-publish: every write after the first `allowed` fails (counted
    per process: the release's copies run on the Dask workers, which get their own copy)."""

    WRITES = ("put", "copy", "discard_unpublished", "put_if_absent")

    def __init__(self, store, allowed: int):
        self._store, self.allowed = store, allowed

    def __getattr__(self, name):
        if name.startswith("__") or name == "_store":  # pickling asks before `_store` exists
            raise AttributeError(name)
        attribute = getattr(self._store, name)
        if name not in self.WRITES:
            return attribute

        def spent_first(*args):
            self._spend()
            return attribute(*args)

        return spent_first

    def _spend(self):
        self.allowed -= 1
        if self.allowed < 0:
            raise ConnectionError("S3 endpoint went away")


def test_an_interrupted_publish_leaves_no_latest_and_the_next_run_redoes_it(base, signing, monkeypatch):
    from resources.object_store import ObjectStoreResource

    base.deliver_and_annotate(8, "datong-schools", "d-int-001", "image", 6)
    real_open = ObjectStoreResource.open
    monkeypatch.setattr(ObjectStoreResource, "open", lambda self: FailingStore(real_open(self), allowed=4))
    with pytest.raises(Exception, match="went away"):
        base.publish("education")
    monkeypatch.setattr(ObjectStoreResource, "open", real_open)
    assert base.store.head("datasets/education/LATEST") is None
    assert base.store.head("datasets/education/v0001/MANIFEST.json") is None
    assert any(base.store.list("datasets/education/v0001/"))  # what the interrupted run wrote
    # and a file of an item an earlier attempt released that this one no longer does
    withdrawn = "datasets/education/v0001/data/files/datong-schools/d-withdrawn/i-1.image.png"
    base.store.put(withdrawn, b"an item withdrawn since")

    finished = base.publish("education")
    assert finished["version"] == "v0001"
    key = load_signing_key(signing.key_path)
    assert verify_release(base.store, finished["release"], key.public_key).ok
    assert base.store.head(withdrawn) is None


@pytest.mark.parametrize(
    ("tamper", "mismatch"),
    [
        ("flip a byte of the Parquet file", "data/items.parquet"),
        ("flip a byte of a media file", ".png"),
        ("flip a byte of the manifest", "signature"),
        ("delete a file", "missing"),
        ("add a file", "added"),
    ],
)
def test_verify_names_the_first_tampering(base, signing, monkeypatch, capsys, tamper, mismatch):
    from annobase.cli import main

    base.deliver_and_annotate(9, "yungang-grottoes", "d-tamper", "image", 4)
    release = base.publish("cultural_heritage")["release"]
    operator_env(monkeypatch, base.resources, signing)
    assert main(["verify", release]) == 0

    media = next(key for path, key in named_files(base.store, release).items() if path.endswith(".png"))
    target = {
        "flip a byte of the Parquet file": f"{release}/data/items.parquet",
        "flip a byte of a media file": media,
        "flip a byte of the manifest": f"{release}/MANIFEST.json",
    }.get(tamper)
    if target:
        data = bytearray(base.store.get(target))
        data[len(data) // 2] ^= 0x01
        base.store.put(target, bytes(data))
    elif tamper == "delete a file":
        delete_behind_annobase(base.store, media)
    else:
        base.store.put(f"{release}/data/extra.txt", b"not in the manifest")
    capsys.readouterr()
    assert main(["verify", release]) == 1
    assert mismatch in capsys.readouterr().err


def test_trace_follows_an_item_from_upload_to_release(base, signing, monkeypatch, capsys):
    from annobase.cli import main

    delivery = base.deliver_and_annotate(10, "jinneng-mine-safety", "d-trace", "text", 6)
    release = base.publish("energy")["release"]
    operator_env(monkeypatch, base.resources, signing)
    item = delivery.manifest["items"][0]
    capsys.readouterr()
    assert main(["trace", f"jinneng-mine-safety/d-trace/{item['item_id']}"]) == 0
    out = capsys.readouterr().out
    assert item["files"]["text"]["sha256"] in out and "uploads/jinneng-mine-safety/d-trace/items/" in out
    assert "gate_passed=True" in out and "annotator=" in out and release in out
    assert main(["trace", "jinneng-mine-safety/d-trace/no-such-item"]) == 1
    assert main(["trace", "../etc/passwd"]) == 2
