"""The Dask resource: a client to an existing scheduler, or a LocalCluster it owns and closes."""

import subprocess
import sys
from pathlib import Path

from resources import DaskResource

REPO = Path(__file__).resolve().parents[1]


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


def test_workers_preload_the_kernels_and_not_dagster():
    """Every kernel the assets ship to Dask, and the store they carry, imports without dagster (a
    worker importing it paid ~0.4 s of CPU); and the resource's workers have them loaded before
    their first task."""
    from assets.worker_kernels import KERNELS

    check = f"import sys; import {', '.join(KERNELS)}; print('dagster' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=REPO)
    assert done.stdout.strip() == "False"
    with DaskResource(local_workers=1).client() as client:
        loaded = client.run(lambda: [name in sys.modules for name in KERNELS])
    assert list(loaded.values()) == [[True] * len(KERNELS)]
