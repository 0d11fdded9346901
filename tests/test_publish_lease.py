"""One publish of an industry at a time (issue 14 §2): a lease in the store, taken with a conditional
write, held from reading LATEST to writing it; two publishes launched at once in two processes with
Dagster instances of their own write one release, and the other refuses naming the holder."""

import multiprocessing
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from flow_helpers import Base

from annobase.leases import LeaseHeld, LeaseLost, acquire, holding, newest_record
from assets.release.publish_lease import lease_name
from assets.release.signing import generate_key_pem
from resources import SigningKeyResource

HOUR = timedelta(hours=1)


def test_a_lease_has_one_holder_until_it_is_released(store):
    lease = acquire(store, "publish/energy", "run-a", HOUR)
    with pytest.raises(LeaseHeld, match="held by run-a"):
        acquire(store, "publish/energy", "run-b", HOUR)
    acquire(store, "publish/medical", "run-b", HOUR).release()  # another name is another lease
    lease.confirm()
    assert lease.release()
    with holding(store, "publish/energy", "run-b", HOUR) as second:
        assert second.record.generation == 3 and newest_record(store, "publish/energy").owner == "run-b"
    assert newest_record(store, "publish/energy").state == "released"


def test_a_dead_holder_is_passed_over_when_its_hold_expires_or_its_run_ended(store):
    crashed = acquire(store, "publish/energy", "run-crashed", timedelta(seconds=-1))  # already expired
    taken = acquire(store, "publish/energy", "run-next", HOUR)
    with pytest.raises(LeaseLost):
        crashed.confirm()
    assert not crashed.release(), "a release after a takeover records nothing"
    assert newest_record(store, "publish/energy") == taken.record
    ended = {"run-next"}
    assert acquire(store, "publish/energy", "run-later", HOUR, lambda record: record.owner in ended)


def test_of_many_racing_for_a_lease_exactly_one_wins(s3_store):
    store = s3_store.open()
    start, outcomes = threading.Barrier(8), []

    def race(owner: str) -> None:
        start.wait()
        try:
            acquire(store, "publish/energy", owner, HOUR)
            outcomes.append(("won", owner))
        except LeaseHeld as held:
            outcomes.append(("refused", held.record.owner))

    threads = [threading.Thread(target=race, args=(f"run-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [owner for outcome, owner in outcomes if outcome == "won"]
    assert len(winners) == 1 and len(outcomes) == 8
    assert {owner for outcome, owner in outcomes if outcome == "refused"} == set(winners)
    assert newest_record(store, "publish/energy").generation == 1


def _publish_in_a_process_of_its_own(config: dict, start, results) -> None:
    """A publish launched as another instance would (a second `dagster dev`, a script with
    `execute_in_process`): its own Dagster instance, the shared store and Dask cluster."""
    from conftest import annobase_resources

    from assets.release.industry_datasets import industry_datasets
    from resources import ObjectStoreResource

    store = ObjectStoreResource(bucket=config["bucket"], endpoint_url=config["endpoint_url"])
    resources = {
        **annobase_resources(store, config["dask_cluster"]),
        "signing_key": SigningKeyResource(key_path=config["key_path"]),
    }
    with dg.DagsterInstance.ephemeral() as instance:
        start.wait()
        result = dg.materialize(
            [industry_datasets],
            instance=instance,
            partition_key="energy",
            resources=resources,
            raise_on_error=False,
        )
    if result.success:
        [materialization] = result.asset_materializations_for_node("industry_datasets")
        results.put(("published", result.run_id, materialization.metadata["version"].value))
    else:
        [failure] = result.get_step_failure_events()
        results.put(("refused", result.run_id, failure.step_failure_data.user_failure_data.description))


class _Cluster:
    """What `annobase_resources` reads of a cluster, picklable."""

    def __init__(self, address: str):
        self.scheduler_address = address


def test_two_publishes_launched_at_once_write_one_release(s3_store, dask_cluster, instance, tmp_path):
    key_path = tmp_path / "release-key.pem"
    key_path.write_bytes(generate_key_pem())
    from conftest import annobase_resources

    signing = SigningKeyResource(key_path=str(key_path))
    base = Base(s3_store, {**annobase_resources(s3_store, dask_cluster), "signing_key": signing}, instance)
    base.deliver_and_annotate(41, "jinneng-mine-safety", "d-lease-001", "image", 12)

    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(2), spawn.Queue()
    config = {
        "bucket": s3_store.bucket,
        "endpoint_url": s3_store.endpoint_url,
        "dask_cluster": _Cluster(dask_cluster.scheduler_address),
        "key_path": str(key_path),
    }
    launches = [
        spawn.Process(target=_publish_in_a_process_of_its_own, args=(config, start, results)) for _ in "ab"
    ]
    for launch in launches:
        launch.start()
    outcomes = sorted(results.get(timeout=600) for _ in launches)
    for launch in launches:
        launch.join(timeout=60)

    [(_, winner, version), (refused, loser, message)] = outcomes
    assert version == "v0001" and refused == "refused" and loser != winner
    assert f"another publish of energy is running (publish/energy is held by {winner}" in message
    assert "this run wrote nothing" in message
    versions = {  # release versions (the content-addressed pool under objects/ is shared by them)
        obj.key.split("/")[2]
        for obj in base.store.list("datasets/energy/")
        if obj.key.count("/") > 2 and not obj.key.startswith("datasets/energy/objects/")
    }
    assert versions == {"v0001"} and base.store.get("datasets/energy/LATEST") == b"v0001"
    chain = [obj.key.rsplit("/", 1)[1] for obj in base.store.list("locks/publish/energy/")]
    assert chain == ["0000000001.json", "0000000002.json"]
    assert newest_record(base.store, lease_name("energy")).owner == winner  # released by the winner

    verify = subprocess.run(
        [str(Path(sys.executable).parent / "annobase"), "verify", "datasets/energy/v0001"],
        capture_output=True,
        text=True,
        env=operator_environment(s3_store, key_path),
        timeout=300,
    )
    assert verify.returncode == 0 and verify.stdout.startswith("OK: "), verify.stderr

    # a holder whose run ended without releasing (a crash Dagster recorded) blocks nobody
    failed = dg.materialize([_crashing_publish], instance=instance, raise_on_error=False)
    acquire(base.store, lease_name("energy"), failed.run_id, HOUR)
    assert base.publish("energy")["reason"] == "nothing changed since v0001"
    # a live holder of another instance (unknown here, unexpired) is never passed over
    acquire(base.store, lease_name("energy"), "run-of-another-instance", HOUR)
    refused = dg.materialize(
        [_industry_datasets()],
        instance=instance,
        partition_key="energy",
        resources=base.resources,
        raise_on_error=False,
    )
    assert not refused.success
    [failure] = refused.get_step_failure_events()
    assert "held by run-of-another-instance" in failure.step_failure_data.user_failure_data.description


@dg.asset
def _crashing_publish() -> None:
    raise RuntimeError("the process died holding the lease")


def _industry_datasets():
    from assets.release.industry_datasets import industry_datasets

    return industry_datasets


def operator_environment(s3_store, key_path) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("ANNOBASE_LOCAL_STORE",)}
    env.update(
        ANNOBASE_S3_ENDPOINT_URL=s3_store.endpoint_url,
        ANNOBASE_BUCKET=s3_store.bucket,
        ANNOBASE_SIGNING_KEY=str(key_path),
    )
    return env
