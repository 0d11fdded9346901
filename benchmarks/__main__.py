"""`python -m benchmarks`: every workload at a tenth of its size and at full size, the project's
code path beside its baseline and floor, printed as a table and written to benchmarks/RESULTS.md.

Baselines are measured once, at the smaller size: they are the slow reference (minutes per
100,000 rows) and their rate is what is compared. The project's Dask workloads are also run on a
single worker at full size, for the speed-up from 1 to N workers.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import UTC, datetime
from importlib import import_module
from importlib.metadata import version
from pathlib import Path

from dask.utils import parse_bytes

from benchmarks.harness import WORKER_MEMORY_LIMIT, Result
from benchmarks.oc import kept_section

# quickest first, so an interrupted run has measured the most
WORKLOADS = ("pii", "qa", "publish", "republish", "sensor_tick", "clean", "intake")
# workloads whose project path runs on the Dask cluster, so speed-up with workers is meaningful
ON_DASK = ("clean", "qa")
# workloads of seconds, measured round after round with their variants in turn (`--rounds`)
IN_ROUNDS = ("qa", "publish", "republish")
# the speed-up targets for the Dask workloads, by number of workers
SPEEDUP_TARGETS = {2: 1.7, 16: 12.0}
LIBRARIES = (
    "dagster",
    "dask",
    "distributed",
    "duckdb",
    "pandas",
    "pyarrow",
    "numpy",
    "datasketch",
    "rapidfuzz",
)
HERE = Path(__file__).resolve().parent
FINDINGS = HERE / "FINDINGS.md"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="Dask workers (default: cores)"
    )
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every full size (e.g. 0.1 for a smoke run)"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help=f"rounds of {', '.join(IN_ROUNDS)} (median or fastest kept)"
    )
    parser.add_argument("--workdir", type=Path, default=HERE / "data", help="generated inputs (not in git)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    sections, failed = [], []
    for name in args.only.split(","):
        workload = import_module(f"benchmarks.{name}")
        full = max(1, int(workload.FULL_SIZE * args.scale))
        small = max(1, full // 10)
        rounds = {"rounds": args.rounds} if name in IN_ROUNDS else {}
        # at full size a Dask workload's project also runs on one worker, for the speed-up
        speed_up = {"one_worker_too": True} if name in ON_DASK and args.workers > 1 else {}
        runs = [
            (small, {"project", "baseline", "floor"}, rounds),
            (full, {"project", "floor"}, rounds | speed_up),
        ]
        results, failure = [], ""
        for size, variants, options in runs:
            try:
                results += workload.run(size, args.workers, args.workdir, variants, **options)
            except Exception as error:  # one workload failing must not lose the others' figures
                failure = f"failed at {size:,} {workload.SIZE_UNIT}: {error!r}"[:500]
                break
        if hasattr(workload, "cleanup"):  # outputs kept until every variant was measured
            workload.cleanup(args.workdir)
        met, figure = (False, failure) if failure else workload.verdict(results)
        failed += [name] if failure else []
        sections.append((workload, small, full, results, met, figure))
        print(_table(results), flush=True)
        print(f"{name}: target {'MET' if met else 'NOT met'}: {figure}\n", flush=True)
        # written after every workload, so an interrupted run keeps what it measured
        args.out.write_text(_report(sections, args))
    print(f"written to {args.out}")
    if failed:  # after every other workload was measured and written
        raise SystemExit(f"failed: {', '.join(failed)} (RESULTS.md says where)")


def _table(results: list[Result]) -> str:
    lines = [
        "| workload | size | variant | workers | seconds | items/s | peak MiB | worker peak MiB | answer "
        "| note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        worker_peak = f"{r.worker_peak_mib:,.0f}" if r.worker_peak_mib is not None else ""
        lines.append(
            f"| {r.workload} | {r.size} | {r.variant} | {r.workers or ''} | {r.seconds:,.2f} | {r.rate:,.0f} "
            f"| {r.peak_mib:,.0f} | {worker_peak} | {r.answer} | {r.note} |"
        )
    return "\n".join(lines)


def _growth(results: list[Result]) -> str:
    """How the project's time grows from the smaller size to the full one (on the most workers)."""
    projects = [r for r in results if r.variant == "project"]
    most = max((r.workers or 0 for r in projects), default=0)
    by_size = sorted((r for r in projects if (r.workers or 0) == most), key=lambda r: r.items)
    if len(by_size) < 2 or not by_size[0].seconds or not by_size[0].items:
        return "not measured at two sizes"
    first, last = by_size[0], by_size[-1]
    size_ratio = last.items / first.items
    time_ratio = last.seconds / first.seconds
    shape = (
        "about linear"
        if 0.7 * size_ratio <= time_ratio <= 1.3 * size_ratio
        else (
            "sub-linear (fixed start-up cost dominates the small size)"
            if time_ratio < size_ratio
            else "super-linear"
        )
    )
    return f"{size_ratio:.0f}× the items took {time_ratio:.1f}× the time: {shape}"


def _speedup(results: list[Result], workers: int) -> tuple[float, float | None] | None:
    """The project's speed-up from 1 to `workers` at full size and, where the workload measured it,
    that of the same work in plain processes without Dask (what the machine itself allows)."""
    full = max((r.items for r in results if r.variant == "project"), default=0)

    def seconds(variant: str, count: int) -> float | None:
        return next(
            (r.seconds for r in results if (r.variant, r.items, r.workers) == (variant, full, count)), None
        )

    if workers == 1 or not (one := seconds("project", 1)) or not (many := seconds("project", workers)):
        return None
    alone, together = seconds("processes", 1), seconds("processes", workers)
    return one / many, (alone / together if alone and together else None)


def _speedup_text(speedup: tuple[float, float | None], workers: int) -> str:
    project, plain = speedup
    text = f"{project:.2f}×"
    if plain:
        text += f" (the same work in 1 and {workers} plain processes, no Dask: {plain:.2f}×)"
    return text


def _targets_of_every_dask_workload(sections, workers: int) -> list[tuple[str, str, bool | None, str]]:
    """What the issue asks of the Dask workloads besides their own targets: every worker's peak
    memory, and the speed-up with workers (met None: not measurable in this run)."""
    on_dask = [section for section in sections if section[0].NAME in ON_DASK]
    rows = []
    peaks = [r for *_, results, _, _ in sections for r in results if r.worker_peak_mib is not None]
    if peaks:
        top = max(peaks, key=lambda r: r.worker_peak_mib)
        rows.append(
            (
                ", ".join(dict.fromkeys(r.workload for r in peaks)),
                f"peak memory of every Dask worker under {WORKER_MEMORY_LIMIT} at every size",
                top.worker_peak_mib < parse_bytes(WORKER_MEMORY_LIMIT) / 2**20,
                f"largest {top.worker_peak_mib:,.0f} MiB ({top.workload}, {top.size}, "
                f"on {top.workers} worker{'' if top.workers == 1 else 's'})",
            )
        )
    for count, target in SPEEDUP_TARGETS.items() if on_dask else ():
        wanted = f"speed-up from 1 to {count} workers ≥ {target}×"
        if count != workers:
            cores = f"this machine has {os.cpu_count()} cores; " if count > (os.cpu_count() or 1) else ""
            names = ", ".join(section[0].NAME for section in on_dask)
            rows.append(
                (names, wanted, None, f"not measured in this run: {cores}`--workers {count}` measures it")
            )
            continue
        for workload, _, _, results, _, _ in on_dask:
            speedup = _speedup(results, workers)
            met = speedup is not None and speedup[0] >= target
            rows.append(
                (workload.NAME, wanted, met, _speedup_text(speedup, workers) if speedup else "not measured")
            )
    return rows


def _machine() -> str:
    memory = next(
        (
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "0",
    )
    libraries = ", ".join(f"{name} {version(name)}" for name in LIBRARIES)
    return (
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"{int(memory) / 1024 / 1024:.1f} GiB memory, Python {platform.python_version()}; {libraries}; "
        f"Dask workers are processes with one thread and a {WORKER_MEMORY_LIMIT} memory limit"
    )


def _report(sections, args) -> str:
    parts = [
        "# Benchmark results",
        "",
        f"Written by `python -m benchmarks --workers {args.workers} --rounds {args.rounds}` "
        f"on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        + (f" at scale {args.scale}" if args.scale != 1 else "")
        + ".",
        "",
        f"Machine: {_machine()}.",
        "",
        "Variants: **project** is the project's own code path (the functions the assets call, on the Dask "
        "cluster where the asset uses one); **baseline** is the single-process pandas script a data engineer "
        "would write first; **floor** is the tightest kernel for the same answer in one process, on the "
        "cores its libraries use (DuckDB, rapidfuzz); **processes** (qa) is the project's own function in 1 "
        "and N plain processes without Dask, the speed-up this machine allows. Peak MiB is the variant's own "
        "process; worker peak is the largest Dask worker's.",
        "",
        "## Targets",
        "",
        "| workload | target | met | measured |",
        "|---|---|---|---|",
    ]
    rows = [(workload.NAME, workload.TARGET, met, figure) for workload, _, _, _, met, figure in sections]
    for name, target, met, figure in rows + _targets_of_every_dask_workload(sections, args.workers):
        verdict = "not measured" if met is None else "yes" if met else "no"
        parts.append(f"| {name} | {target} | {verdict} | {figure} |")
    for workload, small, full, results, _, _ in sections:
        parts += [
            "",
            f"## {workload.NAME}",
            "",
            _table(results),
            "",
            f"Growth from {small:,} to {full:,} {workload.SIZE_UNIT}: {_growth(results)}.",
        ]
        if speedup := _speedup(results, args.workers):
            parts += [
                "",
                f"Speed-up from 1 to {args.workers} workers: {_speedup_text(speedup, args.workers)}.",
            ]
    if FINDINGS.exists():
        parts += ["", FINDINGS.read_text().strip()]
    if args.out.exists() and (operating_characteristic := kept_section(args.out)):
        parts += ["", operating_characteristic]  # written by `python -m benchmarks.oc`, not timed here
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    main()
