"""Measuring one variant of a workload: wall time and peak memory, each variant in a fresh process.

A fresh (spawned) process per variant makes the peak resident memory that variant's own, not
the high-water mark of whatever ran before it in the benchmark process. The project variants
run on a Dask `LocalCluster` of process workers started inside that process; their workers' peaks
are read from the workers themselves.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

# the limit the issue sets for every Dask worker; a worker above it is paused, then restarted
WORKER_MEMORY_LIMIT = "2GiB"


@dataclass
class Outcome:
    """What a variant returns: how many items it handled and a short answer to compare variants."""

    items: int
    answer: str
    worker_peak_mib: float | None = None
    # set by variants that must start a server or upload their input in the same process: the
    # seconds of the work itself, which then replace the whole call's wall time
    seconds: float | None = None


@dataclass
class Result:
    workload: str
    variant: str  # project, baseline, floor
    size: str  # human description of the input
    items: int
    seconds: float
    peak_mib: float  # the variant's own process (the Dask client process for project variants)
    worker_peak_mib: float | None  # the largest Dask worker's peak, project variants only
    answer: str
    workers: int | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else float("inf")


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(function: Callable[..., Outcome], args: tuple) -> tuple[Outcome, float, float]:
    started = time.perf_counter()
    outcome = function(*args)
    return outcome, time.perf_counter() - started, peak_rss_mib()


def measure(
    workload: str,
    variant: str,
    size: str,
    function: Callable[..., Outcome],
    *args,
    workers: int | None = None,
    note: str = "",
) -> Result:
    """Run `function(*args)` in a fresh process and time it there (process start-up excluded).

    `function` must be importable (module-level) and its arguments picklable: paths and numbers,
    never the data itself, so reading the input is part of what is measured.
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        outcome, seconds, peak = pool.submit(_timed, function, args).result()
    return Result(
        workload,
        variant,
        size,
        outcome.items,
        seconds if outcome.seconds is None else outcome.seconds,
        peak,
        outcome.worker_peak_mib,
        outcome.answer,
        workers,
        note,
    )


def worker_counts(workers: int, one_worker_too: bool) -> list[int]:
    """The worker counts a Dask workload's project is measured on: `workers`, and 1 for the speed-up."""
    return list(dict.fromkeys([workers, 1] if one_worker_too else [workers]))


def median_round(measured: list[Result]) -> Result:
    """Of the same variant measured round after round, the round with the median time: on this
    machine a few seconds' work varies by a third between runs."""
    return _round_kept(measured, len(measured) // 2, "median")


def fastest_round(measured: list[Result]) -> Result:
    """The fastest of the rounds: for work whose time the disk's slow spells can double, the round
    least slowed is the cost of the work itself."""
    return _round_kept(measured, 0, "fastest")


def _round_kept(measured: list[Result], rank: int, kept_as: str) -> Result:
    kept = sorted(measured, key=lambda r: r.seconds)[rank]
    times = ", ".join(f"{r.seconds:.1f}" for r in measured)
    kept.note = "; ".join(filter(None, [kept.note, f"{kept_as} of {len(measured)} rounds ({times} s)"]))
    return kept


@contextmanager
def dask_client(workers: int) -> Iterator:
    """A LocalCluster of `workers` single-threaded process workers, as in production."""
    from distributed import Client, LocalCluster

    from assets import worker_kernels

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=WORKER_MEMORY_LIMIT,
            dashboard_address=None,
            preload=[worker_kernels.__name__],
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def worker_peak_mib(client) -> float:
    """The highest peak resident memory among the cluster's workers."""
    return max(client.run(peak_rss_mib).values())
