"""Both object-store implementations behave identically, against a real S3 server and a real directory."""

import hashlib

import pytest


def test_put_get_head_roundtrip(store):
    etag = store.put("uploads/c/d/items/a.txt", "井下安全".encode())
    assert store.get("uploads/c/d/items/a.txt") == "井下安全".encode()
    head = store.head("uploads/c/d/items/a.txt")
    assert head.size == len("井下安全".encode())
    assert head.etag == etag == hashlib.md5("井下安全".encode()).hexdigest()
    assert store.head("uploads/c/d/items/missing.txt") is None


def test_get_within_returns_the_bytes_only_up_to_the_limit(store):
    store.put("uploads/c/d/a.txt", b"twelve bytes")
    assert store.get_within("uploads/c/d/a.txt", limit=12) == (12, b"twelve bytes")
    assert store.get_within("uploads/c/d/a.txt", limit=11) == (12, None)
    store.put("uploads/c/d/empty.txt", b"")
    assert store.get_within("uploads/c/d/empty.txt", limit=0) == (0, b"")
    with pytest.raises(KeyError):
        store.get_within("uploads/c/d/missing.txt", limit=100)


def test_etag_is_stable_for_identical_content_and_changes_with_it(store):
    first = store.put("k/manifest.json", b"{}")
    assert store.put("k/manifest.json", b"{}") == first
    assert store.put("k/manifest.json", b'{"a": 1}') != first


def test_list_resumes_after_any_key_in_its_own_order(store, object_store_resource):
    """The sensors' cursors need exactly this: listing after a key continues where that key stood.

    AWS S3 orders keys by UTF-8 bytes (the local store does too); SeaweedFS orders them as a
    directory walk ('a/b/…' before 'a/b-c.txt'), so the order itself is only asserted locally.
    """
    keys = ["a/b/c.txt", "a/b-c.txt", "a/b.txt", "a/bc/d.txt", "a/a.txt", "b/x.txt", "a/b/a.txt"]
    for key in keys:
        store.put(key, key.encode())
    listed = [obj.key for obj in store.list()]
    assert sorted(listed) == sorted(keys)
    if object_store_resource.local_root:
        assert listed == sorted(keys)
    for position, key in enumerate(listed):
        assert [obj.key for obj in store.list(start_after=key, page_size=2)] == listed[position + 1 :]
    assert sorted(obj.key for obj in store.list("a/b")) == sorted(k for k in keys if k.startswith("a/b"))


def test_list_pages_through_more_than_one_page(store):
    keys = [f"p/{i:04d}" for i in range(25)]
    for key in keys:
        store.put(key, b"x")
    assert [obj.key for obj in store.list("p/", page_size=7)] == keys
    assert [obj.key for obj in store.list("p/", start_after="p/0019", page_size=2)] == keys[20:]


def test_copy_leaves_the_source_untouched(store):
    store.put("uploads/c/d/items/x.png", b"\x89PNG...")
    store.copy("uploads/c/d/items/x.png", "quarantine/c/d/items/x/image.png")
    assert store.get("quarantine/c/d/items/x/image.png") == b"\x89PNG..."
    assert store.get("uploads/c/d/items/x.png") == b"\x89PNG..."


def test_discard_unpublished_removes_that_version_and_nothing_beside_it(store):
    for key in ("datasets/x/v0001/data/a.txt", "datasets/x/v0001/MANIFEST.json", "datasets/x/v00010/a.txt"):
        store.put(key, b"kept or not")
    store.put("datasets/x/v0002/a.txt", b"another version")
    store.discard_unpublished("datasets/x/v0001/")
    assert [obj.key for obj in store.list("datasets/x/")] == [
        "datasets/x/v00010/a.txt",
        "datasets/x/v0002/a.txt",
    ]
    store.discard_unpublished("datasets/x/v0001/")  # nothing left there: nothing to do
    with pytest.raises(ValueError, match="end in '/'"):
        store.discard_unpublished("datasets/x/v0002")
    with pytest.raises(ValueError, match="unsafe"):
        store.discard_unpublished("datasets/../")


@pytest.mark.parametrize("key", ["../escape", "/abs/key", "a/../b", "a//b", "a/./b", "a\\b", ""])
def test_unsafe_keys_are_refused(store, key):
    with pytest.raises(ValueError, match="unsafe object key"):
        store.put(key, b"x")


def test_filesystem_reads_what_the_store_wrote(store):
    store.put("catalog/t/x.bin", b"payload")
    with store.filesystem().open(store.url("catalog/t/x.bin"), "rb") as handle:
        assert handle.read() == b"payload"


def test_put_if_absent_lets_exactly_one_of_racing_writers_win(store):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda n: store.put_if_absent("locks/x", f"writer {n}".encode()), range(8)))
    assert won.count(True) == 1
    assert store.get("locks/x") == f"writer {won.index(True)}".encode()
    assert store.put_if_absent("locks/x", b"late") is False
    assert store.get("locks/x") == f"writer {won.index(True)}".encode()


def test_get_version_reads_only_the_version_asked_for(store):
    from annobase.object_store import PreconditionFailed

    first = store.put("uploads/c/d/manifest.json", b"v1")
    assert store.get_version("uploads/c/d/manifest.json", first) == b"v1"
    store.put("uploads/c/d/manifest.json", b"v2")
    with pytest.raises(PreconditionFailed):
        store.get_version("uploads/c/d/manifest.json", first)
    with pytest.raises(KeyError):
        store.get_version("uploads/c/d/missing.json", first)
