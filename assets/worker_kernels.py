"""What every Dask worker imports as it starts (the clusters' `preload`, `dask worker --preload
assets.worker_kernels` for a cluster started by hand): the kernels the assets ship to the workers
and the libraries they use, so no worker's first task spends a second importing pandas, pyarrow and
rapidfuzz. None of them imports dagster (tested)."""

from importlib import import_module

KERNELS = (
    "annobase.object_store",
    "assets.intake.verify",
    "assets.cleaning.item_content",
    "assets.quality.batch_quality",
    "assets.release.publishing",
)


def dask_setup(worker) -> None:
    """Called by Dask once the worker process is up, before it takes any task."""
    for name in KERNELS:
        import_module(name)
