"""Near-duplicate texts across a client's history, on SeaweedFS and a real Dask cluster: an edited re-send
of last month's notes is dropped before annotation and points at the note it copies, while the same
texts from another client are that client's own and kept."""

import pandas as pd
import pytest
from flow_helpers import run_flow_for_delivery

from assets.cleaning.near_duplicates import near_text_duplicates
from assets.cleaning.text_history import text_index
from resources import CatalogResource
from simulator import make_delivery, resend_edited, upload_delivery


@pytest.fixture
def flow(s3_store, dask_cluster, instance):
    from conftest import annobase_resources

    return {
        "store": s3_store.open(),
        "resources": annobase_resources(s3_store, dask_cluster),
        "catalog": CatalogResource(object_store=s3_store).open(),
        "instance": instance,
    }


def take_in(flow, delivery) -> pd.DataFrame:
    upload_delivery(flow["store"], delivery)
    partition = f"{delivery.client_id}/{delivery.delivery_id}"
    assert run_flow_for_delivery(flow["instance"], flow["resources"], partition).success
    return flow["catalog"].read_partition("clean_items", partition).set_index("item_id")


def test_an_edited_resend_of_an_earlier_delivery_is_dropped_and_another_clients_copy_is_kept(flow):
    client = "xiehe-clinic"
    first = make_delivery(71, client, "d-2026-10-01-001", "text", 12)
    take_in(flow, first)
    resent = resend_edited(make_delivery(72, client, "d-2026-11-01-001", "text", 12), first, n_items=4)
    cleaned = take_in(flow, resent)

    dropped = cleaned[cleaned.status == "dropped"]
    resent_ids = [item["item_id"] for item in resent.manifest["items"][:4]]
    assert sorted(dropped.index) == sorted(resent_ids)
    assert set(dropped.drop_reason) == {"near_duplicate_text"}
    originals = [f"{client}/d-2026-10-01-001/{item['item_id']}" for item in first.manifest["items"][:4]]
    assert dropped.loc[resent_ids, "duplicate_of"].tolist() == originals
    assert (dropped.similarity >= 0.8).all()
    assert (cleaned.drop(resent_ids).status == "kept").all()

    # the very same edited files from another client: nothing of the clinic's history is theirs
    other = resend_edited(make_delivery(72, "datong-schools", "d-2026-11-01-001", "text", 12), first, 4)
    assert (take_in(flow, other).status == "kept").all()
    index = flow["catalog"].read_partition("text_lsh", f"{client}/d-2026-11-01-001")
    assert len(index) == 8  # the kept texts only, each with one bucket per band


def test_stored_buckets_pair_what_the_within_delivery_search_pairs():
    """The stored buckets put two texts together exactly when they share a band, as the search inside
    one delivery does: every near pair it finds shares a bucket."""
    first = make_delivery(73, "xiehe-clinic", "d-001", "text", 200)
    resent = resend_edited(make_delivery(74, "xiehe-clinic", "d-002", "text", 200), first, n_items=60)
    texts = [resent.files[item["files"]["text"]["path"]].decode() for item in resent.manifest["items"]]
    texts += [first.files[item["files"]["text"]["path"]].decode() for item in first.manifest["items"]]
    keys = [f"t{i:04d}" for i in range(len(texts))]
    pairs = near_text_duplicates(list(zip(keys, texts, strict=True)))
    buckets = dict(zip(keys, text_index(texts, 0.8).buckets, strict=True))
    assert len(pairs) >= 60
    for pair in pairs:
        assert set(buckets[pair.item_key]) & set(buckets[pair.duplicate_of]), pair
