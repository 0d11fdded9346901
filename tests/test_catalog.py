"""The catalog: a query about one client reads that client's files only, on both stores."""

from datetime import UTC, datetime

import pytest

from resources import CatalogResource


def raw_item(client_id: str, delivery_id: str, item_id: str, sha256: str) -> dict:
    return {
        "item_key": f"{client_id}/{delivery_id}/{item_id}",
        "client_id": client_id,
        "delivery_id": delivery_id,
        "item_id": item_id,
        "part": "text",
        "upload_key": f"uploads/{client_id}/{delivery_id}/items/{item_id}.txt",
        "sha256": sha256,
        "bytes": 10,
        "industry": "education",
        "modality": "text",
        "task": "classification",
        "license": "publishable",
        "manifest_etag": "e",
        "dagster_run_id": "r",
        "ingested_at": datetime.now(UTC),
    }


def test_a_client_query_never_reads_another_clients_files(object_store_resource):
    catalog = CatalogResource(object_store=object_store_resource).open()
    catalog.write_partition(
        "raw_items", "datong-schools/d-001", [raw_item("datong-schools", "d-001", "i1", "a" * 64)]
    )
    catalog.write_partition(
        "raw_items", "xiehe-clinic/d-001", [raw_item("xiehe-clinic", "d-001", "i1", "b" * 64)]
    )
    # another client's file that cannot be read at all: only a query that never opens it succeeds
    object_store_resource.open().put("catalog/raw_items/xiehe-clinic/d-002.parquet", b"not parquet")

    hashes = catalog.query("client_file_hashes", client_id="datong-schools", delivery_id="d-002")

    assert hashes.to_dict("records") == [{"sha256": "a" * 64, "item_key": "datong-schools/d-001/i1"}]
    with pytest.raises(Exception, match="(?i)parquet"), catalog.connect() as con:
        con.execute("SELECT count(*) FROM raw_items").fetchone()


def test_a_client_id_is_checked_before_it_becomes_part_of_a_path(object_store_resource):
    catalog = CatalogResource(object_store=object_store_resource).open()
    with pytest.raises(ValueError, match="client_id"):
        catalog.query("client_file_hashes", client_id="../xiehe-clinic", delivery_id="d-001")


def test_a_query_reads_the_tables_it_names_and_those_behind_the_views_it_uses():
    from resources.catalog import tables_used

    assert tables_used(["client_file_hashes"]) == {"raw_items"}
    # delivery_gate_status reads batch_gate_status, a view over latest_gate_results over gate_results
    assert {"batches", "gate_results"} <= tables_used(["delivery_gate_status"])
    assert "raw_items" not in tables_used(["delivery_gate_status"])


def test_a_client_snapshot_answers_as_the_catalog_does(object_store_resource):
    catalog = CatalogResource(object_store=object_store_resource).open()
    for delivery, sha in (("d-001", "a"), ("d-002", "b"), ("d-003", "a")):
        catalog.write_partition(
            "raw_items", f"datong-schools/{delivery}", [raw_item("datong-schools", delivery, "i1", sha * 64)]
        )
    params = {"client_id": "datong-schools", "delivery_id": "d-003"}
    with catalog.client_snapshot("datong-schools", ["client_file_hashes"]) as snapshot:
        from_snapshot = snapshot.query("client_file_hashes", **params)
    from_views = catalog.query("client_file_hashes", **params)
    assert sorted(from_snapshot.itertuples(index=False)) == sorted(from_views.itertuples(index=False))
    # only deliveries whose id sorts before d-003 count as earlier
    assert set(from_views.item_key) == {"datong-schools/d-001/i1", "datong-schools/d-002/i1"}


def test_readers_see_each_partition_whole_while_a_writer_replaces_it(s3_store):
    """A rework run replacing a partition while a delivery run reads it: every read is the old file or
    the new one, whole, never an error (FileExpired) or a mix of the two."""
    import threading

    catalog = CatalogResource(object_store=s3_store).open()
    versions = {
        sha: [raw_item("datong-schools", "d-001", f"i{n:05d}", sha) for n in range(3000)]
        for sha in ("a" * 64, "b" * 64)
    }
    catalog.write_partition("raw_items", "datong-schools/d-001", versions["a" * 64])
    stop, errors = threading.Event(), []

    def replace_again_and_again():
        while not stop.is_set():
            for rows in versions.values():
                catalog.write_partition("raw_items", "datong-schools/d-001", rows)

    writer = threading.Thread(target=replace_again_and_again)
    writer.start()
    seen = set()
    try:
        for _ in range(40):
            try:
                read = catalog.query("client_file_hashes", client_id="datong-schools", delivery_id="d-999")
            except Exception as error:  # noqa: BLE001 - any error is the failure being tested for
                errors.append(error)
                continue
            assert len(read) == 1, f"a read mixed two versions of the file: {sorted(read.sha256)}"
            seen.add(read.sha256[0])
    finally:
        stop.set()
        writer.join()
    assert errors == []
    assert seen <= set(versions)
