"""The Dask resource: a client to an existing scheduler, or a LocalCluster it owns and closes."""

from resources import DaskResource


def _square(value: int) -> int:
    return value * value


def test_a_local_cluster_is_started_and_closed_by_the_resource():
    with DaskResource(local_workers=2).client() as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert client.gather(client.map(_square, range(10))) == [v * v for v in range(10)]
        cluster = client.cluster
    assert cluster.status.name == "closed"


def test_an_existing_scheduler_is_used_and_left_running(dask_cluster):
    with DaskResource(scheduler_address=dask_cluster.scheduler_address).client() as client:
        assert client.submit(_square, 12).result() == 144
        assert client.scheduler.address == dask_cluster.scheduler_address
    assert dask_cluster.status.name == "running"
