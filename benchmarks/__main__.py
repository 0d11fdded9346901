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

from benchmarks.harness import WORKER_MEMORY_LIMIT, Result

# quickest first, so an interrupted run has measured the most
WORKLOADS = ("qa", "publish", "sensor_tick", "clean", "intake")
# workloads whose project path runs on the Dask cluster, so speed-up with workers is meaningful
ON_DASK = ("clean", "qa")
# workloads of seconds, measured round after round with their variants in turn (`--rounds`)
IN_ROUNDS = ("qa", "publish")
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


def _speedup(results: list[Result], workers: int) -> str:
    """The project's speed-up at full size and, where the workload measured it, the speed-up of the
    same work in plain processes without Dask (what the machine itself allows)."""
    full = max((r.items for r in results if r.variant == "project"), default=0)

    def seconds(variant: str, count: int) -> float | None:
        return next(
            (r.seconds for r in results if (r.variant, r.items, r.workers) == (variant, full, count)), None
        )

    if workers == 1 or not (one := seconds("project", 1)) or not (many := seconds("project", workers)):
        return ""
    line = f"speed-up from 1 to {workers} workers: {one / many:.2f}×"
    if (alone := seconds("processes", 1)) and (together := seconds("processes", workers)):
        line += f" (the same work in 1 and {workers} plain processes, no Dask: {alone / together:.2f}×)"
    return line


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
        "would write first; **floor** is the tightest kernel for the same answer in one process. Peak MiB is "
        "the variant's own process; worker peak is the largest Dask worker's.",
        "",
        "## Targets",
        "",
        "| workload | target | met | measured |",
        "|---|---|---|---|",
    ]
    for workload, _, _, _, met, figure in sections:
        parts.append(f"| {workload.NAME} | {workload.TARGET} | {'yes' if met else 'no'} | {figure} |")
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
            parts += ["", speedup[0].upper() + speedup[1:] + "."]
    if FINDINGS.exists():
        parts += ["", FINDINGS.read_text().strip()]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    main()
