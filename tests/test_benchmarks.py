"""`python -m benchmarks` at a small scale: the comparisons in benchmarks/RESULTS.md mean something
only if every variant of a workload gives the same answer on the same input, and the speed-up is
measured on the workers asked for. (How fast each variant is belongs to the benchmark, not here.)"""

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the three workloads whose reference variants recompute the project's answer their own way;
# intake and the sensor tick need the daemon and SeaweedFS and are exercised by their own tests
WORKLOADS = ("qa", "clean", "publish")


def table_rows(report: str) -> list[dict]:
    header = "| workload | size | variant | workers | seconds |"
    rows = []
    lines = report.splitlines()
    for number, line in enumerate(lines):
        if line.startswith(header):
            names = [cell.strip() for cell in line.strip("|").split("|")]
            for row in lines[number + 2 :]:
                if not row.startswith("|"):
                    break
                cells = [cell.strip() for cell in row.strip("|").split("|")]
                rows.append(dict(zip(names, cells, strict=True)))
    return rows


def clean_counts(answer: str) -> dict[str, int]:
    """ "exact 6, near 7, masked 500" -> {"exact": 6, "near": 7, "masked": 500}"""
    return {name: int(count) for name, count in (part.split() for part in answer.split(", "))}


def test_every_variant_gives_the_project_answer_and_the_speedup_is_measured(tmp_path):
    report = tmp_path / "RESULTS.md"
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", ",".join(WORKLOADS), "--scale", "0.005"]
        + ["--workers", "2", "--rounds", "1", "--workdir", str(tmp_path / "data"), "--out", str(report)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    text = report.read_text()
    rows = table_rows(text)

    answers = defaultdict(set)
    for row in rows:
        # clean's baseline hashes shingles datasketch's way; its approximate near-duplicate search
        # may miss a different few pairs (benchmarks/clean.py), compared apart below
        if (row["workload"], row["variant"]) != ("clean", "baseline"):
            answers[row["workload"], row["size"]].add(row["answer"])
    assert {workload for workload, _ in answers} == set(WORKLOADS)
    for (workload, size), given in answers.items():
        assert len(given) == 1, f"{workload} at {size}: the variants disagree: {given}"
    for row in rows:
        if (row["workload"], row["variant"]) == ("clean", "baseline"):
            (project,) = answers["clean", row["size"]]
            ours, theirs = clean_counts(project), clean_counts(row["answer"])
            assert (theirs["exact"], theirs["masked"]) == (ours["exact"], ours["masked"])
            assert abs(theirs["near"] - ours["near"]) <= max(1, 0.02 * ours["near"])

    measured = {(row["workload"], row["variant"], row["workers"]) for row in rows}
    for workload in ("qa", "clean"):  # on Dask: the project on 2 workers and on 1
        assert {(workload, "project", "2"), (workload, "project", "1")} <= measured
    assert {("qa", "processes", "2"), ("qa", "processes", "1"), ("qa", "baseline", "")} <= measured
    assert text.count("Speed-up from 1 to 2 workers:") == 2
    targets = text.split("## Targets", 1)[1].split("\n## ", 1)[0]
    assert {
        "| qa | speed-up from 1 to 2 workers ≥ 1.7× |",
        "| clean | speed-up from 1 to 2 workers ≥ 1.7× |",
    } <= {line[: line.index("× |") + 3] for line in targets.splitlines() if "speed-up from 1 to 2" in line}
    assert "| qa, clean | speed-up from 1 to 16 workers ≥ 12.0× | not measured |" in targets
    assert "peak memory of every Dask worker under 2GiB at every size | yes |" in targets
    assert "no Dask:" in text.split("## qa", 1)[1].split("## ", 1)[0]
    publish_notes = [r["note"] for r in rows if (r["workload"], r["variant"]) == ("publish", "project")]
    assert publish_notes and all("manifest hashes = sha256sum's for all" in note for note in publish_notes)
    # nothing left behind but the inputs, which the next run reuses
    assert not (tmp_path / "data" / "publish-trash").exists()


def test_republish_pools_only_the_new_items_files(tmp_path):
    """The next version of a release: the objects the pool gained (the project's answer) are the new
    items' uploads as `sha256sum` reads them (the floor's), at both sizes; a version copying every
    file agrees with `sha256sum` + `cp -r` of every upload."""
    report = tmp_path / "RESULTS.md"
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "republish", "--scale", "0.01", "--workers", "2"]
        + ["--rounds", "1", "--workdir", str(tmp_path / "data"), "--out", str(report)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    rows = table_rows(report.read_text())
    answers = defaultdict(dict)
    for row in rows:
        answers[row["size"]][row["variant"]] = row["answer"]
    assert set(answers) == {
        "100 items (version 1)",
        "+1 items, 1 answers changed (version 2)",
        "101 items, every file copied",
        "1,000 items (version 1)",
        "+10 items, 1 answers changed (version 2)",
        "1,010 items, every file copied",
    }
    for size, by_variant in answers.items():
        if "version 1" not in size:
            assert by_variant["project"] == by_variant["floor"], size
    assert answers["+10 items, 1 answers changed (version 2)"]["project"].startswith("10 files, ")
    assert answers["1,000 items (version 1)"]["project"].startswith("1,000 files, ")
    assert not (tmp_path / "data" / "publish-trash").exists()
