"""Signed release manifests: an untouched release verifies, and any tampering is named as its first mismatch.

Releases are written by hand here (a Parquet table, a media file, a text file), so these tests hold
for whatever publishes them; one test runs the same checks against a real S3 server.
"""

import hashlib
import io
import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from annobase.object_store import LocalObjectStore
from annobase.verify import run_verify
from assets.release.release_manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    VerifyResult,
    build_manifest,
    parse_release,
    verify_release,
)
from assets.release.signing import (
    dev_key_path,
    generate_key_pem,
    load_public_key,
    load_signing_key,
    sign,
    verify_signature,
)

RELEASE = "datasets/energy/2026.11.1"
PARQUET = "data/items.parquet"
IMAGE = "data/files/jinneng-mine-safety/d-001/i-000001.png"
TEXT = "data/files/jinneng-mine-safety/d-001/i-000001.txt"
LINEAGE = {
    "deliveries": ["jinneng-mine-safety/d-001"],
    "batches": ["b-0001"],
    "quality_runs": ["qa-0001"],
    "run_ids": ["3f2a"],
}


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """No test may create or read a development key in the real home directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ANNOBASE_SIGNING_KEY", raising=False)


@pytest.fixture
def local_store(tmp_path):
    return LocalObjectStore(str(tmp_path / "store"), "annobase")


def key_file(directory: Path, name: str) -> str:
    path = directory / name
    path.write_bytes(generate_key_pem())
    return str(path)


@pytest.fixture
def key(tmp_path):
    return load_signing_key(key_file(tmp_path, "release.pem"))


@pytest.fixture
def other_key(tmp_path):
    return load_signing_key(key_file(tmp_path, "other.pem"))


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame(
        {
            "item_key": ["jinneng-mine-safety/d-001/i-000001"],
            "client_id": ["jinneng-mine-safety"],
            "delivery_id": ["d-001"],
            "item_id": ["i-000001"],
            "modality": ["multimodal"],
            "label": ["hazard"],
        }
    ).to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_release(store, key, release: str = RELEASE, signer=None) -> None:
    """Files first, then the manifest, then its signature: the order a publisher writes them in."""
    files = {
        PARQUET: parquet_bytes(),
        IMAGE: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        TEXT: "井下巷道顶板有裂缝,需要立即支护。\n".encode(),
    }
    for path, data in files.items():
        store.put(f"{release}/{path}", data)
    industry, version = parse_release(release)
    manifest = build_manifest(
        release,
        industry,
        version,
        {path: (hashlib.sha256(data).hexdigest(), len(data)) for path, data in files.items()},
        LINEAGE,
        key.fingerprint,
        "2026-11-21T02:00:00+00:00",
        "test",
    )
    store.put(f"{release}/{MANIFEST_NAME}", manifest)
    store.put(f"{release}/{SIGNATURE_NAME}", sign(manifest, signer or key))


def flip_byte(store, key: str) -> None:
    data = bytearray(store.get(key))
    data[len(data) // 2] ^= 0x01
    store.put(key, bytes(data))


def delete(store: LocalObjectStore, key: str) -> None:
    """The store interface has no delete (annobase never deletes); a tamperer does."""
    (store.root / key).unlink()


def test_an_untouched_release_verifies(local_store, key):
    write_release(local_store, key)
    result = verify_release(local_store, RELEASE, key.public_key)
    assert result.ok and result.first_mismatch is None
    assert result.checked_files == 3


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (PARQUET, f"{PARQUET}: sha256 is "),
        (IMAGE, f"{IMAGE}: sha256 is "),
        (TEXT, f"{TEXT}: sha256 is "),
        (MANIFEST_NAME, "signature does not verify with key sha256:"),
    ],
)
def test_one_flipped_byte_is_the_first_mismatch(local_store, key, path, expected):
    write_release(local_store, key)
    flip_byte(local_store, f"{RELEASE}/{path}")
    result = verify_release(local_store, RELEASE, key.public_key)
    assert not result.ok
    assert result.first_mismatch.startswith(expected)
    if path != MANIFEST_NAME:
        assert ", the manifest says " in result.first_mismatch


def test_a_changed_manifest_fails_on_its_signature_even_when_it_matches_the_files(local_store, key):
    """Rewriting the manifest to match tampered files is exactly what the signature is for."""
    write_release(local_store, key)
    local_store.put(f"{RELEASE}/data/extra.txt", b"smuggled")
    manifest = local_store.get(f"{RELEASE}/{MANIFEST_NAME}").replace(b'"files":', b'"files": ', 1)
    local_store.put(f"{RELEASE}/{MANIFEST_NAME}", manifest)
    result = verify_release(local_store, RELEASE, key.public_key)
    assert result.first_mismatch == f"signature does not verify with key {key.fingerprint}"


def test_a_missing_file_fails(local_store, key):
    write_release(local_store, key)
    delete(local_store, f"{RELEASE}/{TEXT}")
    assert verify_release(local_store, RELEASE, key.public_key).first_mismatch == f"missing: {TEXT}"


def test_an_added_file_fails(local_store, key):
    write_release(local_store, key)
    local_store.put(f"{RELEASE}/data/extra.txt", b"not published")
    result = verify_release(local_store, RELEASE, key.public_key)
    assert result.first_mismatch == "added file not in the manifest: data/extra.txt"


def test_a_resized_file_fails_on_its_size(local_store, key):
    write_release(local_store, key)
    local_store.put(f"{RELEASE}/{TEXT}", local_store.get(f"{RELEASE}/{TEXT}") + b"!")
    result = verify_release(local_store, RELEASE, key.public_key)
    assert result.first_mismatch.startswith(f"{TEXT}: ")
    assert "bytes, the manifest says" in result.first_mismatch


def test_missing_manifest_or_signature_fails(local_store, key):
    write_release(local_store, key)
    delete(local_store, f"{RELEASE}/{SIGNATURE_NAME}")
    assert (
        verify_release(local_store, RELEASE, key.public_key).first_mismatch == f"{SIGNATURE_NAME} is missing"
    )
    delete(local_store, f"{RELEASE}/{MANIFEST_NAME}")
    assert (
        verify_release(local_store, RELEASE, key.public_key).first_mismatch == f"{MANIFEST_NAME} is missing"
    )


def test_a_signature_by_another_key_fails(local_store, key, other_key):
    write_release(local_store, key, signer=other_key)
    result = verify_release(local_store, RELEASE, key.public_key)
    assert result.first_mismatch == f"signature does not verify with key {key.fingerprint}"
    assert verify_release(local_store, RELEASE, other_key.public_key).ok


def test_a_signed_release_copied_to_another_version_fails(local_store, key):
    """The manifest names its release, so a genuine signed release cannot vouch for another prefix."""
    write_release(local_store, key)
    copy = "datasets/energy/2026.12.1"
    for obj in local_store.list(RELEASE + "/"):
        local_store.copy(obj.key, copy + obj.key[len(RELEASE) :])
    result = verify_release(local_store, copy, key.public_key)
    assert not result.ok
    assert result.first_mismatch.startswith(f"{MANIFEST_NAME} is not a valid release manifest: ")
    assert RELEASE in result.first_mismatch


def test_a_neighbouring_release_is_not_part_of_this_one(local_store, key):
    """`…/2026.11.1` must not list `…/2026.11.10`'s keys as added files."""
    write_release(local_store, key)
    write_release(local_store, key, release=RELEASE + "0")
    assert verify_release(local_store, RELEASE, key.public_key).ok


def test_the_s3_store_verifies_and_catches_tampering(s3_store, key):
    store = s3_store.open()
    write_release(store, key)
    assert verify_release(store, RELEASE, key.public_key) == VerifyResult(True, 3, None)
    flip_byte(store, f"{RELEASE}/{PARQUET}")
    assert verify_release(store, RELEASE, key.public_key).first_mismatch.startswith(f"{PARQUET}: sha256 is ")
    store.put(f"{RELEASE}/data/extra.txt", b"x")  # sorts before the Parquet file: now the first mismatch
    assert verify_release(store, RELEASE, key.public_key).first_mismatch == (
        "added file not in the manifest: data/extra.txt"
    )


def test_the_manifest_is_deterministic_sorted_and_never_lists_itself(key):
    files = {"b.txt": ("0" * 64, 1), "a/z.bin": ("f" * 64, 2)}
    arguments = (RELEASE, "energy", "2026.11.1", files, LINEAGE, key.fingerprint, "2026-11-21", "v")
    manifest = build_manifest(*arguments)
    assert manifest == build_manifest(*arguments)
    text = manifest.decode()
    assert text.index('"a/z.bin"') < text.index('"b.txt"')
    assert json.loads(text)["schema"] == "annobase.release-manifest/2"
    pooled = f"../objects/sha256/ab/ab{'0' * 62}.png"
    for bad in (
        MANIFEST_NAME,
        SIGNATURE_NAME,
        "../escape.txt",
        "/abs.txt",
        "a//b.txt",
        pooled,
        "../objects/x",
    ):
        with pytest.raises(ValueError):
            build_manifest(
                RELEASE, "energy", "2026.11.1", {bad: ("0" * 64, 1)}, {}, key.fingerprint, "t", "v"
            )
    with pytest.raises(ValueError):
        build_manifest("datasets/energy/other", "energy", "2026.11.1", {}, {}, key.fingerprint, "t", "v")
    # a pool path names its content: its entry must carry that very sha256
    assert build_manifest(
        RELEASE, "energy", "2026.11.1", {pooled: (f"ab{'0' * 62}", 1)}, {}, key.fingerprint, "t", "v"
    )


def full_copy_release(store, key, files: dict[str, bytes]) -> None:
    """A version as written before the pool: every file copied under it, manifest schema 1."""
    for path, data in files.items():
        store.put(f"{RELEASE}/{path}", data)
    listing = {path: (hashlib.sha256(data).hexdigest(), len(data)) for path, data in files.items()}
    manifest = build_manifest(RELEASE, "energy", "2026.11.1", listing, LINEAGE, key.fingerprint, "t", "v")
    manifest = manifest.replace(b"annobase.release-manifest/2", b"annobase.release-manifest/1")
    store.put(f"{RELEASE}/{MANIFEST_NAME}", manifest)
    store.put(f"{RELEASE}/{SIGNATURE_NAME}", sign(manifest, key))


def test_a_full_copy_version_written_before_the_pool_still_verifies(local_store, key):
    full_copy_release(local_store, key, {PARQUET: parquet_bytes(), IMAGE: b"\x89PNG image"})
    assert verify_release(local_store, RELEASE, key.public_key) == VerifyResult(True, 2, None)
    flip_byte(local_store, f"{RELEASE}/{IMAGE}")
    assert verify_release(local_store, RELEASE, key.public_key).first_mismatch.startswith(
        f"{IMAGE}: sha256 is "
    )


def test_a_full_copy_manifest_cannot_name_the_pool(local_store, key):
    """Schema 1 had no pool: a signed schema-1 manifest naming a path outside its version is refused."""
    data = b"\x89PNG image"
    sha256 = hashlib.sha256(data).hexdigest()
    local_store.put(f"datasets/energy/objects/sha256/{sha256[:2]}/{sha256}.png", data)
    full_copy_release(local_store, key, {PARQUET: parquet_bytes()})
    manifest = json.loads(local_store.get(f"{RELEASE}/{MANIFEST_NAME}"))
    manifest["files"].append(
        {"path": f"../objects/sha256/{sha256[:2]}/{sha256}.png", "sha256": sha256, "bytes": 11}
    )
    signed = json.dumps(manifest).encode()
    local_store.put(f"{RELEASE}/{MANIFEST_NAME}", signed)
    local_store.put(f"{RELEASE}/{SIGNATURE_NAME}", sign(signed, key))
    result = verify_release(local_store, RELEASE, key.public_key)
    assert "is not a relative path inside the release" in result.first_mismatch


@pytest.mark.parametrize(
    "release",
    [
        "datasets/Energy/v1",
        "datasets/energy/..",
        "datasets/energy/.",
        "datasets/energy/v1/../../uploads",
        "datasets/energy/v 1",
        "datasets/energy",
        "/datasets/energy/v1",
        "uploads/energy/v1",
    ],
)
def test_malformed_release_names_are_refused(local_store, key, release):
    with pytest.raises(ValueError):
        verify_release(local_store, release, key.public_key)


def test_signatures_are_base64_of_64_bytes_and_garbage_never_verifies(key, other_key):
    signature = sign(b"data", key)
    assert len(signature.decode("ascii")) == 88
    assert verify_signature(b"data", signature, key.public_key)
    assert verify_signature(b"data", signature.decode() + "\n", key.public_key)
    assert not verify_signature(b"data!", signature, key.public_key)
    assert not verify_signature(b"data", signature, other_key.public_key)
    for garbage in (b"", b"not base64!", b"AAAA", signature[:-4]):
        assert not verify_signature(b"data", garbage, key.public_key)


def test_only_unencrypted_ed25519_keys_are_accepted(tmp_path, key):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_path = tmp_path / "ec.pem"
    ec_path.write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ValueError, match="an EC key; releases are signed with Ed25519"):
        load_signing_key(str(ec_path))
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(ValueError, match="is encrypted"):
        load_signing_key(str(encrypted))
    with pytest.raises(ValueError, match="cannot read signing key"):
        load_signing_key(str(tmp_path / "absent.pem"))
    with pytest.raises(ValueError, match="an EC key"):
        load_public_key(
            ec_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    assert load_public_key(key.public_pem) == key.public_key
    assert b"PRIVATE" not in key.public_pem and "private" not in repr(key).lower()


def test_the_dev_key_is_created_once_and_private(tmp_path):
    first = load_signing_key(None)
    path = dev_key_path()
    assert path == tmp_path / "home" / ".annobase" / "dev_signing_key.pem"
    assert first.is_dev
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    content = path.read_bytes()
    second = load_signing_key(None)
    assert second.is_dev and second.fingerprint == first.fingerprint
    assert path.read_bytes() == content
    assert os.listdir(path.parent) == [path.name]


@pytest.fixture
def verify_env(tmp_path, monkeypatch, local_store):
    """The environment `annobase verify` reads: the embedded store under tmp_path."""
    monkeypatch.setenv("ANNOBASE_LOCAL_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("ANNOBASE_BUCKET", raising=False)
    monkeypatch.delenv("ANNOBASE_S3_ENDPOINT_URL", raising=False)
    return local_store


def test_run_verify_passes_with_the_configured_signing_key(verify_env, key, tmp_path, monkeypatch, capsys):
    write_release(verify_env, key)
    monkeypatch.setenv("ANNOBASE_SIGNING_KEY", str(tmp_path / "release.pem"))
    assert run_verify(RELEASE, None) == 0
    captured = capsys.readouterr()
    assert captured.out == f"OK: 3 files of {RELEASE} match its signed manifest (key {key.fingerprint})\n"
    assert captured.err == ""


def test_run_verify_with_a_public_key_file(verify_env, key, other_key, tmp_path, capsys):
    write_release(verify_env, key)
    right, wrong = tmp_path / "right.pub.pem", tmp_path / "wrong.pub.pem"
    right.write_bytes(key.public_pem)
    wrong.write_bytes(other_key.public_pem)
    assert run_verify(RELEASE, str(right)) == 0
    assert capsys.readouterr().out.startswith(f"OK: 3 files of {RELEASE}")
    assert run_verify(RELEASE, str(wrong)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"MISMATCH: signature does not verify with key {other_key.fingerprint}\n"


def test_run_verify_reports_tampering_with_exit_1(verify_env, key, tmp_path, monkeypatch, capsys):
    write_release(verify_env, key)
    monkeypatch.setenv("ANNOBASE_SIGNING_KEY", str(tmp_path / "release.pem"))
    flip_byte(verify_env, f"{RELEASE}/{IMAGE}")
    assert run_verify(RELEASE, None) == 1
    assert capsys.readouterr().err.startswith(f"MISMATCH: {IMAGE}: sha256 is ")


def test_run_verify_usage_problems_exit_2(verify_env, key, tmp_path, capsys):
    write_release(verify_env, key)
    assert run_verify("datasets/energy/../uploads", None) == 2
    assert "is not of the form" in capsys.readouterr().err
    assert run_verify(RELEASE, str(tmp_path / "absent.pem")) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert run_verify(RELEASE, str(tmp_path / "release.pem")) == 2  # a private key where a public one goes
    assert "not a PEM public key" in capsys.readouterr().err


def test_run_verify_falls_back_to_the_dev_key_with_a_warning(verify_env, capsys):
    dev_key = load_signing_key(None)
    write_release(verify_env, dev_key)
    assert run_verify(RELEASE, None) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"OK: 3 files of {RELEASE}")
    assert captured.err.startswith("warning: ANNOBASE_SIGNING_KEY is not set")
    assert dev_key.fingerprint in captured.err
