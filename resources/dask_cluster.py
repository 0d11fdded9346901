"""Dask: a `distributed.Client` to an existing scheduler, or to a LocalCluster owned by the caller.

`dagster-dask` is outdated, hence this small resource. Starting a LocalCluster costs seconds, so
deployments (and `annobase demo`) point `ANNOBASE_DASK_ADDRESS` at one long-lived scheduler that
every run shares; without it each step starts and closes its own cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from assets import worker_kernels


class DaskResource(dg.ConfigurableResource):
    """Where the heavy transforms run."""

    scheduler_address: str | None = None
    local_workers: int = 2
    local_worker_memory_limit: str = "2GiB"

    @contextmanager
    def client(self) -> Iterator:
        from distributed import Client, LocalCluster

        if self.scheduler_address:
            with Client(self.scheduler_address) as client:
                yield client
            return
        with (
            LocalCluster(
                n_workers=self.local_workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=self.local_worker_memory_limit,
                dashboard_address=None,
                preload=[worker_kernels.__name__],
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
