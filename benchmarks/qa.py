"""Workload `qa`: the quality measures of a busy period, to know whether QA keeps up with annotation.

The issue's size: 1,000,000 label annotations (3 annotators per task, 10 % gold tasks) and 200,000
transcripts, in batches of 1,000 tasks as the annotation loop makes them, by a pool of simulated
annotators of known accuracy (one careless, one spammer). Scored: accuracy on gold, 1 − CER,
Krippendorff's alpha, Dawid–Skene consensus and per-annotator scorecards rolled up over all batches.

- project: `measure_batch` (what the `qa_results` asset runs) per batch on a Dask cluster, one task
  per Parquet file, then the `annotator_scorecards_rolling` SQL over the batches' scorecards; timed
  from a running cluster (Outcome.seconds) whose workers preloaded the kernels as they started.
- processes (measured with the speed-up): the project's own per-file function in 1 and N plain
  processes, files dealt out in turn, no Dask: what this machine itself gives the speed-up.
- baseline: the pandas script a data engineer would write: row-wise `apply`, `jiwer.cer` per row,
  Dawid–Skene in Python loops, `krippendorff.alpha` per batch.
- floor: one process; every batch at once in numpy (Dawid–Skene with each batch's own stopping
  point, alpha from coincidence counts), rapidfuzz for edit distances, DuckDB for the scorecards.

All of them answer with the same rounded figures.
"""

from __future__ import annotations

import math
import random
import time
import unicodedata
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import harness

NAME = "qa"
TARGET = "< 60 s for 1,000,000 label annotations + 200,000 transcripts; within 2× of the floor"
FULL_SIZE = 1_000_000
SIZE_UNIT = "label annotations"

OVERLAP = 3
TASKS_PER_BATCH = 1_000
BATCH_CREW = 8  # annotators working on one batch, drawn from the pool
POOL_GOOD_ANNOTATORS = 58  # plus one careless and one spammer (simulator.default_crew)
BATCHES_PER_FILE = 10
TRANSCRIPT_SHARE = 5  # one transcript per five label annotations
SEED = 20240601

_PARSED_AT = pd.Timestamp("2024-06-01T12:00:00Z")
_ROLLING_SQL = Path(__file__).resolve().parents[1] / "sql" / "annotator_scorecards_rolling.sql"


def _describe(size: int) -> str:
    """The input of `size`, in words (Result.size)."""
    return f"{size:,} label annotations + {size // TRANSCRIPT_SHARE:,} transcripts"


# -- input -----------------------------------------------------------------------------------------


def _catalog_schema():
    """The `annotations` catalog table's columns (sql/catalog_tables.sql) as Arrow types."""
    import pyarrow as pa

    text = pa.string()
    return pa.schema(
        [
            ("batch_id", text),
            ("task_id", pa.int64()),
            ("annotation_id", pa.int64()),
            ("item_key", text),
            ("client_id", text),
            ("delivery_id", text),
            ("item_id", text),
            ("annotator", pa.int64()),
            ("ground_truth", pa.bool_()),
            ("honeypot", pa.bool_()),
            ("lead_time", pa.float64()),
            ("created_at", text),
            ("label", text),
            ("transcript", text),
            ("boxes_json", text),
            ("part_labels_json", text),
            ("export_etag", text),
            ("dagster_run_id", text),
            ("parsed_at", pa.timestamp("us", tz="UTC")),
        ]
    )


def _catalog_rows(
    rows: pd.DataFrame, batch_id: str, industry: str, tasks_before: int, annotations_before: int
):
    """Simulator rows as the catalog holds them: global task and annotation ids, keys, honeypots."""
    client_id, delivery_id = f"c-{industry}", f"d-{batch_id}"
    gold_tasks = rows["task_id"][rows["ground_truth"]]
    return pd.DataFrame(
        {
            "batch_id": batch_id,
            "task_id": rows["task_id"] + tasks_before,
            "annotation_id": np.arange(annotations_before + 1, annotations_before + len(rows) + 1),
            "item_key": f"{client_id}/{delivery_id}/" + rows["item_id"],
            "client_id": client_id,
            "delivery_id": delivery_id,
            "item_id": rows["item_id"],
            "annotator": rows["annotator"],
            "ground_truth": rows["ground_truth"],
            "honeypot": rows["task_id"].isin(gold_tasks),
            "lead_time": rows["lead_time"],
            "created_at": "2024-06-01T09:00:00+00:00",
            "label": rows.get("label"),
            "transcript": rows.get("transcript"),
            "boxes_json": None,
            "part_labels_json": None,
            "export_etag": f"etag-{batch_id}",
            "dagster_run_id": "bench",
            "parsed_at": _PARSED_AT,
        }
    )


def _simulated_batch(modality: str, number: int, tasks: int, crew: list):
    """One batch's simulator rows, industry and label set; the same (modality, number), the same batch."""
    from simulator.annotators import annotate_labels, annotate_transcripts
    from simulator.clients import LABEL_SETS
    from simulator.text_corpus import make_utterance

    industries = sorted(LABEL_SETS)
    industry = industries[number % len(industries)]
    rng = np.random.default_rng([SEED, number, modality == "speech"])
    batch_crew = [crew[k] for k in sorted(rng.choice(len(crew), BATCH_CREW, replace=False))]
    item_ids = [f"i-{k:06d}" for k in range(1, tasks + 1)]
    if modality == "text":
        label_set = LABEL_SETS[industry]["classification"]
        # every classification label set is binary; the first label is the rarer one
        truth = np.asarray(label_set, dtype=object)[rng.choice(len(label_set), tasks, p=[0.35, 0.65])]
        rows = annotate_labels(dict(zip(item_ids, truth, strict=True)), label_set, batch_crew, OVERLAP, rng)
        return rows, industry, label_set
    speaker = random.Random(f"{SEED}/{number}")
    texts = [make_utterance(speaker, industry).text for _ in item_ids]
    rows = annotate_transcripts(dict(zip(item_ids, texts, strict=True)), batch_crew, OVERLAP, rng)
    return rows, industry, []


def prepare(size: int, workdir: Path) -> Path:
    """Write the batches of `size` label annotations and size/5 transcripts as Parquet (once).

    One file per BATCHES_PER_FILE batches of a modality, and `batches.parquet` with each batch's
    modality and label set, as the catalog's `batches` table has them.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from simulator.annotators import default_crew

    directory = workdir / f"qa-{size}"
    if (directory / "batches.parquet").exists():
        return directory
    partial = workdir / f"qa-{size}.partial"
    partial.mkdir(parents=True, exist_ok=True)
    crew = default_crew(SEED, POOL_GOOD_ANNOTATORS)
    schema = _catalog_schema()
    batches, tasks_before, annotations_before = [], 0, 0
    for modality, modality_size in (("text", size), ("speech", size // TRANSCRIPT_SHARE)):
        total_tasks = modality_size // OVERLAP
        numbers = range((total_tasks + TASKS_PER_BATCH - 1) // TASKS_PER_BATCH)
        for file_number, start in enumerate(range(0, len(numbers), BATCHES_PER_FILE)):
            frames = []
            for number in numbers[start : start + BATCHES_PER_FILE]:
                tasks = min(TASKS_PER_BATCH, total_tasks - number * TASKS_PER_BATCH)
                rows, industry, label_set = _simulated_batch(modality, number, tasks, crew)
                batch_id = f"{modality}-{number:05d}"
                frames.append(_catalog_rows(rows, batch_id, industry, tasks_before, annotations_before))
                batches.append({"batch_id": batch_id, "modality": modality, "label_set": label_set})
                tasks_before, annotations_before = tasks_before + tasks, annotations_before + len(rows)
            table = pa.Table.from_pandas(pd.concat(frames), schema=schema, preserve_index=False)
            pq.write_table(table, partial / f"{modality}-{file_number:03d}.parquet", compression="zstd")
    pd.DataFrame(batches).to_parquet(partial / "batches.parquet")
    partial.rename(directory)
    return directory


def _annotation_files(directory: Path) -> list[Path]:
    return sorted(set(directory.glob("*.parquet")) - {directory / "batches.parquet"})


def _answer(scores: pd.DataFrame, cards: pd.DataFrame) -> str:
    """The figures every variant must agree on.

    `scores`: one row per batch with modality, text_accuracy, gold_annotations, speech_accuracy,
    krippendorff_alpha, consensus_on_gold and gold_units (the gold units whose consensus label is
    the reference, and all gold units). `cards`: the rolled-up scorecards, one row per annotator.
    """
    text = scores[scores["modality"] == "text"]
    speech = scores[scores["modality"] == "speech"]
    accuracy = (text["text_accuracy"] * text["gold_annotations"]).sum() / text["gold_annotations"].sum()
    weakest = cards.sort_values(["gold_accuracy", "annotator"]).iloc[0]
    return (
        f"accuracy {accuracy:.3f}, 1-CER {speech['speech_accuracy'].mean():.3f}, "
        f"alpha {text['krippendorff_alpha'].mean():.3f}, "
        f"consensus=gold {text['consensus_on_gold'].sum() / text['gold_units'].sum():.3f}; "
        f"{len(cards)} annotators, weakest #{int(weakest['annotator'])} gold {weakest['gold_accuracy']:.3f} "
        f"consensus {weakest['agreement_with_consensus']:.3f}"
    )


def _items(scores: pd.DataFrame) -> int:
    return int(scores["annotations"].sum())


# -- project -----------------------------------------------------------------------------------------


def _file_quality(path: str, batches_path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """On a worker: `measure_batch` for every batch of one file; its scores and scorecards."""
    import pyarrow.parquet as pq

    from assets.quality.batch_quality import measure_batch

    batches = pd.read_parquet(batches_path).set_index("batch_id")
    table = pq.read_table(path)  # batch after batch, as the catalog's partitions hold them
    batch_ids = table["batch_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, batch_ids[1:] != batch_ids[:-1]])
    scores, cards = [], []
    for start, end in zip(starts, [*starts[1:], len(batch_ids)], strict=True):
        rows = table.slice(start, end - start).to_pandas()
        batch_id = batch_ids[start]
        batch = batches.loc[batch_id]
        quality = measure_batch(rows, batch.modality, list(batch.label_set))
        # Series built from arrays: set_index and drop_duplicates on the frames took ~1 ms a batch
        is_gold = rows["ground_truth"].to_numpy()
        gold = pd.Series(rows["label"].array[is_gold], index=rows["task_id"].array[is_gold])
        gold = gold[~gold.index.duplicated()]
        on_gold = 0
        if batch.modality == "text":
            agreed = pd.Series(quality.consensus["label"].array, index=quality.consensus["task_id"].array)
            on_gold = int((agreed.reindex(gold.index) == gold).sum())
        scores.append(
            {"batch_id": batch_id, "modality": batch.modality, **quality.scores}
            | {"consensus_on_gold": on_gold, "gold_units": len(gold)}
        )
        # simulated exports name no users: no e-mails, as the catalog then holds them
        cards.append(
            quality.scorecards.assign(batch_id=batch_id, annotator_email=None).astype(
                {"annotator_email": "string"}
            )
        )
    return pd.DataFrame(scores), pd.concat(cards, ignore_index=True)


def _rolled_up(cards: pd.DataFrame) -> pd.DataFrame:
    """The project's `annotator_scorecards_rolling` query over these scorecards (no gate has run)."""
    import duckdb

    with duckdb.connect() as con:
        con.register("scorecards", cards)
        con.execute(
            "CREATE VIEW batch_gate_status AS "
            "SELECT NULL::VARCHAR AS batch_id, NULL::BOOLEAN AS passed WHERE false"
        )
        return con.sql(_ROLLING_SQL.read_text()).df()


def project(directory: str, workers: int) -> harness.Outcome:
    """`measure_batch` per batch on Dask, one task per file, results gathered as they finish.

    Timed from a running cluster, as deployments share a long-lived one (resources/dask_cluster.py).
    """
    from distributed import as_completed

    root = Path(directory)
    with harness.dask_client(workers) as client:
        started = time.perf_counter()
        futures = client.map(
            _file_quality,
            [str(path) for path in _annotation_files(root)],
            batches_path=str(root / "batches.parquet"),
        )
        parts = [future.result() for future in as_completed(futures)]
        scores = pd.concat([part[0] for part in parts], ignore_index=True)
        cards = _rolled_up(pd.concat([part[1] for part in parts], ignore_index=True))
        seconds = time.perf_counter() - started
        worker_peak = harness.worker_peak_mib(client)
    return harness.Outcome(_items(scores), _answer(scores, cards), worker_peak, seconds)


def _share_quality(paths: list[str], batches_path: str) -> tuple[float, pd.DataFrame, pd.DataFrame]:
    """In one plain process: `_file_quality` over its share of the files, timed from its first."""
    started = time.perf_counter()
    parts = [_file_quality(path, batches_path) for path in paths]
    seconds = time.perf_counter() - started
    return seconds, pd.concat([part[0] for part in parts]), pd.concat([part[1] for part in parts])


def in_processes(directory: str, processes: int) -> harness.Outcome:
    """The project's per-file function in `processes` plain processes, each given every Nth file,
    with no scheduler between them: the speed-up this machine gives the same work without Dask.
    Timed inside the processes, from their first file to the last one's end (start-up and imports
    excluded, as the project's are by its running cluster)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from assets import worker_kernels

    root = Path(directory)
    files = [str(path) for path in _annotation_files(root)]
    shares = [files[start::processes] for start in range(processes)]
    with ProcessPoolExecutor(
        processes, mp_context=get_context("spawn"), initializer=worker_kernels.dask_setup, initargs=(None,)
    ) as pool:
        parts = list(pool.map(_share_quality, shares, [str(root / "batches.parquet")] * processes))
    scores = pd.concat([part[1] for part in parts], ignore_index=True)
    cards = _rolled_up(pd.concat([part[2] for part in parts], ignore_index=True))
    return harness.Outcome(_items(scores), _answer(scores, cards), seconds=max(part[0] for part in parts))


# -- baseline ----------------------------------------------------------------------------------------


def _plain_normalise(text: str) -> str:
    """NFKC, then drop punctuation and whitespace, one character at a time."""
    return "".join(
        char
        for char in unicodedata.normalize("NFKC", text)
        if not unicodedata.category(char).startswith("P") and not char.isspace()
    )


def _character_edits(reference: str, hypothesis: str) -> int:
    """Edits from jiwer's CER (which needs a non-empty reference)."""
    import jiwer

    if not reference:
        return len(hypothesis)
    return round(jiwer.cer(reference, hypothesis) * len(reference))


def _loop_dawid_skene(votes: dict, label_set: list, tol: float = 1e-5, max_iter: int = 100) -> dict:
    """Dawid–Skene by plain loops: {task: [(annotator, label index)]} -> {task: label index}."""
    eps, k = 1e-10, len(label_set)
    posterior = {}
    for task, task_votes in votes.items():
        counts = [0] * k
        for _, label in task_votes:
            counts[label] += 1
        posterior[task] = [count / len(task_votes) for count in counts]
    n_labels = sum(len(task_votes) for task_votes in votes.values())
    previous = -math.inf
    for _ in range(max_iter):
        prior = [max(sum(p[t] for p in posterior.values()) / len(posterior), eps) for t in range(k)]
        confusion = defaultdict(lambda: [[0.0] * k for _ in range(k)])
        for task, task_votes in votes.items():
            for annotator, label in task_votes:
                for true in range(k):
                    confusion[annotator][true][label] += posterior[task][true]
        log_confusion = {}
        for annotator, matrix in confusion.items():
            rows = [[max(value, eps) for value in row] for row in matrix]
            log_confusion[annotator] = [[math.log(value / sum(row)) for value in row] for row in rows]
        log_likelihood = 0.0
        for task, task_votes in votes.items():
            log_joint = [math.log(prior[true]) for true in range(k)]
            for annotator, label in task_votes:
                for true in range(k):
                    log_joint[true] += log_confusion[annotator][true][label]
            top = max(log_joint)
            weights = [math.exp(value - top) for value in log_joint]
            evidence = sum(weights)
            posterior[task] = [weight / evidence for weight in weights]
            log_likelihood += top + math.log(evidence)
        log_likelihood /= n_labels
        if log_likelihood - previous < tol:
            break
        previous = log_likelihood
    return {task: max(range(k), key=lambda true, p=p: (p[true], -true)) for task, p in posterior.items()}


def _baseline_labels(annotations: pd.DataFrame, label_sets: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    import krippendorff

    work = annotations[~annotations["ground_truth"]].copy()
    gold = annotations[annotations["ground_truth"]].drop_duplicates("task_id")
    work = work.merge(
        gold[["task_id", "label"]].rename(columns={"label": "reference"}), on="task_id", how="left"
    )
    work["on_gold"] = work["reference"].notna()
    work["correct"] = work.apply(lambda row: row["label"] == row["reference"], axis=1)
    scores, consensus = [], {}
    for batch_id, batch in work.groupby("batch_id"):
        label_set = label_sets[batch_id]
        batch = batch.assign(code=batch["label"].map(label_set.index))
        votes = defaultdict(list)
        for row in batch.itertuples():
            votes[row.task_id].append((row.annotator, row.code))
        chosen = _loop_dawid_skene(votes, label_set)
        consensus.update({task: label_set[code] for task, code in chosen.items()})
        matrix = batch.pivot_table(index="annotator", columns="task_id", values="code", aggfunc="first")
        on_gold = batch[batch["on_gold"]]
        batch_gold = gold[gold["batch_id"] == batch_id]
        scores.append(
            {
                "batch_id": batch_id,
                "modality": "text",
                "annotations": len(batch),
                "gold_annotations": len(on_gold),
                "text_accuracy": on_gold["correct"].mean(),
                "krippendorff_alpha": krippendorff.alpha(
                    reliability_data=matrix.to_numpy(dtype=float), level_of_measurement="nominal"
                ),
                "consensus_on_gold": sum(
                    consensus[task] == label
                    for task, label in zip(batch_gold.task_id, batch_gold.label, strict=True)
                    if task in votes
                ),
                "gold_units": int(batch_gold["task_id"].isin(votes.keys()).sum()),
            }
        )
    work["consensus"] = work["task_id"].map(consensus)
    work["gold_edits"] = (~work["correct"]).astype(int)
    work["gold_chars"] = 1
    work["consensus_edits"] = (work["label"] != work["consensus"]).astype(int)
    work["consensus_chars"] = 1
    return pd.DataFrame(scores), work


def _baseline_transcripts(annotations: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    annotations = annotations.assign(normalised=annotations["transcript"].fillna("").map(_plain_normalise))
    work = annotations[~annotations["ground_truth"]].copy()
    gold = annotations[annotations["ground_truth"]].drop_duplicates("task_id")
    work = work.merge(
        gold[["task_id", "normalised"]].rename(columns={"normalised": "reference"}), on="task_id", how="left"
    )
    work["on_gold"] = work["reference"].notna()
    work["gold_edits"] = work.apply(
        lambda row: _character_edits(row["reference"], row["normalised"]) if row["on_gold"] else 0, axis=1
    )
    work["gold_chars"] = work["reference"].fillna("").str.len()
    medoids = {}
    for task, task_rows in work.sort_values(["task_id", "annotator"]).groupby("task_id"):
        texts = list(task_rows["normalised"])
        totals = [0] * len(texts)
        for i, j in combinations(range(len(texts)), 2):
            distance = _character_edits(texts[i], texts[j])
            totals[i] += distance
            totals[j] += distance
        medoids[task] = texts[totals.index(min(totals))]
    work["consensus"] = work["task_id"].map(medoids)
    work["consensus_edits"] = work.apply(
        lambda row: _character_edits(row["consensus"], row["normalised"]), axis=1
    )
    work["consensus_chars"] = work["consensus"].str.len()
    scores = []
    for batch_id, batch in work.groupby("batch_id"):
        on_gold = batch[batch["on_gold"]]
        scores.append(
            {
                "batch_id": batch_id,
                "modality": "speech",
                "annotations": len(batch),
                "speech_accuracy": 1 - on_gold["gold_edits"].sum() / on_gold["gold_chars"].sum(),
            }
        )
    return pd.DataFrame(scores), work


def _scorecards_by_pandas(work: pd.DataFrame) -> pd.DataFrame:
    """Per batch and annotator, then rolled up over batches, as the scorecards SQL weighs them."""
    work = work.assign(contested=work.groupby("task_id")["task_id"].transform("size") >= 2)
    cards = []
    for (_, annotator), rows in work.groupby(["batch_id", "annotator"]):
        gold, contested = rows[rows["on_gold"]], rows[rows["contested"]]
        cards.append(
            {
                "annotator": annotator,
                "tasks_done": rows["task_id"].nunique(),
                "gold_tasks": gold["task_id"].nunique(),
                "gold_accuracy": 1 - gold["gold_edits"].sum() / gold["gold_chars"].sum()
                if len(gold)
                else np.nan,
                "agreement_with_consensus": 1
                - contested["consensus_edits"].sum() / contested["consensus_chars"].sum()
                if len(contested)
                else np.nan,
                "median_lead_time": rows["lead_time"].median(),
            }
        )
    cards = pd.DataFrame(cards)
    rolled = []
    for annotator, rows in cards.groupby("annotator"):
        graded, agreed = (
            rows.dropna(subset=["gold_accuracy"]),
            rows.dropna(subset=["agreement_with_consensus"]),
        )
        rolled.append(
            {
                "annotator": annotator,
                "gold_accuracy": (graded["gold_accuracy"] * graded["gold_tasks"]).sum()
                / graded["gold_tasks"].sum(),
                "agreement_with_consensus": (agreed["agreement_with_consensus"] * agreed["tasks_done"]).sum()
                / agreed["tasks_done"].sum(),
            }
        )
    return pd.DataFrame(rolled)


def baseline(directory: str) -> harness.Outcome:
    """The straightforward pandas script; uncapped, as the full size takes about 2 minutes."""
    root = Path(directory)
    batches = pd.read_parquet(root / "batches.parquet")
    label_sets = {batch.batch_id: list(batch.label_set) for batch in batches.itertuples()}
    read = {
        modality: pd.concat(
            [pd.read_parquet(path) for path in sorted(root.glob(f"{modality}-*.parquet"))],
            ignore_index=True,
        )
        for modality in ("text", "speech")
    }
    label_scores, label_work = _baseline_labels(read["text"], label_sets)
    speech_scores, speech_work = _baseline_transcripts(read["speech"])
    scores = pd.concat([label_scores, speech_scores], ignore_index=True)
    cards = _scorecards_by_pandas(pd.concat([label_work, speech_work], ignore_index=True))
    return harness.Outcome(_items(scores), _answer(scores, cards))


# -- floor ---------------------------------------------------------------------------------------------

_EPS = 1e-10
_TOLERANCE = 1e-5
_MAX_ITERATIONS = 100


def _sums(keys: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Per key 0..n-1: the sum of weights (or the count) of its rows."""
    return np.bincount(keys, weights=weights, minlength=n)


def _all_batches_dawid_skene(
    batch_of_unit: np.ndarray, unit: np.ndarray, rater: np.ndarray, code: np.ndarray, k: int
) -> np.ndarray:
    """Dawid–Skene over every batch at once; each batch keeps its own priors, confusion matrices
    (raters are per batch) and stopping point, so the result is the per-batch one."""
    n_units, n_raters, n_batches = len(batch_of_unit), int(rater.max()) + 1, int(batch_of_unit.max()) + 1
    counts = np.bincount(unit * k + code, minlength=n_units * k).reshape(-1, k).astype(float)
    posterior = counts / counts.sum(axis=1, keepdims=True)
    batch_of_row = batch_of_unit[unit]
    units_per_batch = np.bincount(batch_of_unit, minlength=n_batches)
    rows_per_batch = np.bincount(batch_of_row, minlength=n_batches)
    cell = rater * k + code
    previous = np.full(n_batches, -np.inf)
    running = np.ones(n_batches, dtype=bool)
    for _ in range(_MAX_ITERATIONS):
        prior = np.stack([_sums(batch_of_unit, n_batches, posterior[:, t]) for t in range(k)], axis=1)
        log_prior = np.log(np.clip(prior / units_per_batch[:, None], _EPS, None))
        confusion = np.stack([_sums(cell, n_raters * k, posterior[unit, t]) for t in range(k)], axis=1)
        confusion = np.clip(confusion.reshape(n_raters, k, k).transpose(0, 2, 1), _EPS, None)
        confusion /= confusion.sum(axis=2, keepdims=True)
        row_log = np.log(confusion)[rater, :, code]
        log_joint = log_prior[batch_of_unit] + np.stack(
            [_sums(unit, n_units, row_log[:, t]) for t in range(k)], 1
        )
        top = log_joint.max(axis=1, keepdims=True)
        estimate = np.exp(log_joint - top)
        evidence = estimate.sum(axis=1, keepdims=True)
        estimate /= evidence
        log_likelihood = _sums(batch_of_unit, n_batches, (top + np.log(evidence)).ravel()) / rows_per_batch
        updating = running[batch_of_unit]
        posterior[updating] = estimate[updating]
        running &= log_likelihood - previous >= _TOLERANCE
        previous = np.where(running, log_likelihood, previous)
        if not running.any():
            break
    return posterior


def _all_batches_alpha(batch_of_unit: np.ndarray, counts: np.ndarray, n_batches: int) -> np.ndarray:
    """Nominal Krippendorff alpha per batch from counts[unit, value] (units with ≥ 2 values)."""
    values = counts.sum(axis=1)
    pairable = values >= 2
    counts, batch, values = counts[pairable], batch_of_unit[pairable], values[pairable]
    disagreement = _sums(batch, n_batches, (values**2 - (counts**2).sum(axis=1)) / (values - 1))
    n = _sums(batch, n_batches, values)
    by_value = np.stack([_sums(batch, n_batches, counts[:, c]) for c in range(counts.shape[1])], axis=1)
    return 1 - (n - 1) * disagreement / (n**2 - (by_value**2).sum(axis=1))


def _units_of_sorted(task: np.ndarray) -> np.ndarray:
    """Each row's unit number, for rows sorted by task."""
    return np.cumsum(np.r_[False, task[1:] != task[:-1]])


def _gold_positions(task: np.ndarray, gold_task: np.ndarray) -> np.ndarray:
    """For every row, the position of its task's first gold row in gold_task; -1 when it has none."""
    firsts = np.flatnonzero(~pd.Index(gold_task).duplicated())
    found = pd.Index(gold_task[firsts]).get_indexer(task)
    return np.where(found >= 0, firsts[found], -1)


def _floor_labels(con, root: Path, n_batches: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Label batches: consensus, accuracy, alpha; per-row edit components for the scorecards."""
    rows = con.sql(
        f"""
        SELECT b.batch, a.task_id, a.annotator, a.ground_truth, a.lead_time,
               list_position(b.label_set, a.label)::BIGINT - 1 AS code
          FROM read_parquet('{root}/text-*.parquet') AS a JOIN batches AS b USING (batch_id)
         ORDER BY a.task_id, a.annotation_id
        """
    ).fetchnumpy()
    gold = rows["ground_truth"]
    batch, task, annotator, code = (rows[name][~gold] for name in ("batch", "task_id", "annotator", "code"))
    k = int(code.max()) + 1
    unit = _units_of_sorted(task)
    first = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
    batch_of_unit = batch[first]
    rater = pd.factorize(batch * (1 << 32) + annotator)[0]  # confusion matrices are per batch
    counts = np.bincount(unit * k + code, minlength=len(first) * k).reshape(-1, k)
    votes = counts.sum(axis=1)
    chosen = np.where(
        votes >= 3,
        _all_batches_dawid_skene(batch_of_unit, unit, rater, code, k).argmax(axis=1),
        counts.argmax(axis=1),
    )
    reference_at = _gold_positions(task[first], rows["task_id"][gold])
    reference = np.where(reference_at >= 0, rows["code"][gold][reference_at], -1)
    on_gold = reference[unit] >= 0
    correct = code == reference[unit]
    gold_annotations = _sums(batch, n_batches, on_gold)
    scores = pd.DataFrame(
        {
            "batch": np.arange(n_batches),
            "modality": "text",
            "annotations": _sums(batch, n_batches),
            "gold_annotations": gold_annotations,
            "text_accuracy": _sums(batch, n_batches, correct) / gold_annotations,
            "krippendorff_alpha": _all_batches_alpha(batch_of_unit, counts, n_batches),
            "consensus_on_gold": _sums(batch_of_unit, n_batches, reference == chosen),
            "gold_units": _sums(batch_of_unit, n_batches, reference >= 0),
        }
    )
    components = pd.DataFrame(
        {
            "batch": batch,
            "annotator": annotator,
            "task_id": task,
            "lead_time": rows["lead_time"][~gold],
            "on_gold": on_gold,
            "gold_edits": (~correct).astype(np.int64),
            "gold_chars": 1,
            "contested": votes[unit] >= 2,
            "consensus_edits": (code != chosen[unit]).astype(np.int64),
            "consensus_chars": 1,
        }
    )
    return scores[scores["annotations"] > 0], components


def _normalised(texts: list[str]) -> np.ndarray:
    """normalise_transcript's result, with a delete table of only the characters these texts hold."""
    folded = [unicodedata.normalize("NFKC", text) for text in texts]
    dropped = {
        ord(char): None
        for char in set("".join(folded))
        if unicodedata.category(char).startswith("P") or char.isspace()
    }
    return np.asarray([text.translate(dropped) for text in folded], dtype=object)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    return process.cpdist(a, b, scorer=Levenshtein.distance, workers=-1).astype(np.int64)


def _lengths(texts: np.ndarray) -> np.ndarray:
    return np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))


def _floor_transcripts(con, root: Path, n_batches: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Transcript batches: 1 − CER on gold and each task's medoid; per-row edit components."""
    rows = con.sql(
        f"""
        SELECT b.batch, a.task_id, a.annotator, a.ground_truth, a.lead_time,
               coalesce(a.transcript, '') AS transcript
          FROM read_parquet('{root}/speech-*.parquet') AS a JOIN batches AS b USING (batch_id)
         ORDER BY a.task_id, a.annotator, a.annotation_id
        """
    ).df()
    gold = rows["ground_truth"].to_numpy()
    normalised = _normalised(rows["transcript"].tolist())
    work = rows[~gold]
    batch, task, annotator = (work[name].to_numpy() for name in ("batch", "task_id", "annotator"))
    text = normalised[~gold]
    unit = _units_of_sorted(task)
    task_size = np.bincount(unit)
    # every pair of a task's rows: row i and row i + step of the same task
    pairs = [np.flatnonzero(unit[step:] == unit[:-step]) for step in range(1, int(task_size.max()))]
    first_of_pair = np.concatenate(pairs)
    second_of_pair = np.concatenate([i + step for step, i in enumerate(pairs, start=1)])
    pair_distance = _distances(text[first_of_pair], text[second_of_pair])
    total = np.bincount(first_of_pair, pair_distance, len(task)) + np.bincount(
        second_of_pair, pair_distance, len(task)
    )
    ranked = np.lexsort((annotator, total, unit))
    medoid = ranked[np.flatnonzero(np.r_[True, unit[ranked][1:] != unit[ranked][:-1]])][unit]
    reference_at = _gold_positions(task, rows["task_id"].to_numpy()[gold])
    on_gold = reference_at >= 0
    reference = normalised[gold][reference_at[on_gold]]
    gold_edits, gold_chars = np.zeros(len(task), dtype=np.int64), np.zeros(len(task), dtype=np.int64)
    gold_edits[on_gold] = _distances(text[on_gold], reference)
    gold_chars[on_gold] = _lengths(reference)
    scores = pd.DataFrame(
        {
            "batch": np.arange(n_batches),
            "modality": "speech",
            "annotations": _sums(batch, n_batches),
            "speech_accuracy": 1 - _sums(batch, n_batches, gold_edits) / _sums(batch, n_batches, gold_chars),
        }
    )
    components = pd.DataFrame(
        {
            "batch": batch,
            "annotator": annotator,
            "task_id": task,
            "lead_time": work["lead_time"].to_numpy(),
            "on_gold": on_gold,
            "gold_edits": gold_edits,
            "gold_chars": gold_chars,
            "contested": task_size[unit] >= 2,
            "consensus_edits": _distances(text, text[medoid]),
            "consensus_chars": _lengths(text[medoid]),
        }
    )
    return scores[scores["annotations"] > 0], components


_FLOOR_SCORECARDS = """
WITH cards AS (
    SELECT batch, annotator,
           count(DISTINCT task_id) AS tasks_done,
           count(DISTINCT task_id) FILTER (WHERE on_gold) AS gold_tasks,
           1 - sum(gold_edits) FILTER (WHERE on_gold) / sum(gold_chars) FILTER (WHERE on_gold)
               AS gold_accuracy,
           1 - sum(consensus_edits) FILTER (WHERE contested) / sum(consensus_chars) FILTER (WHERE contested)
               AS agreement_with_consensus
      FROM components
     GROUP BY batch, annotator
)
SELECT annotator,
       sum(gold_accuracy * gold_tasks) / sum(gold_tasks) FILTER (WHERE gold_accuracy IS NOT NULL)
           AS gold_accuracy,
       sum(agreement_with_consensus * tasks_done)
           / sum(tasks_done) FILTER (WHERE agreement_with_consensus IS NOT NULL)
           AS agreement_with_consensus
  FROM cards
 GROUP BY annotator
"""


def floor(directory: str) -> harness.Outcome:
    """Every batch at once in one process: DuckDB reads, numpy and rapidfuzz score, DuckDB rolls up."""
    import duckdb

    root = Path(directory)
    # per-batch sums cover every batch; those of the other modality divide 0 by 0 and are dropped
    with duckdb.connect() as con, np.errstate(invalid="ignore"):
        con.execute(
            f"CREATE TABLE batches AS SELECT row_number() OVER () - 1 AS batch, batch_id, label_set "
            f"FROM read_parquet('{root}/batches.parquet')"
        )
        ((n_batches,),) = con.sql("SELECT count(*) FROM batches").fetchall()
        label_scores, label_components = _floor_labels(con, root, n_batches)
        speech_scores, speech_components = _floor_transcripts(con, root, n_batches)
        con.register("components", pd.concat([label_components, speech_components], ignore_index=True))
        cards = con.sql(_FLOOR_SCORECARDS).df()
    scores = pd.concat([label_scores, speech_scores], ignore_index=True)
    return harness.Outcome(_items(scores), _answer(scores, cards))


# -- the workload ------------------------------------------------------------------------------------


def run(
    size: int,
    workers: int,
    workdir: Path,
    variants: set[str],
    rounds: int,
    one_worker_too: bool = False,
) -> list[harness.Result]:
    """Prepare the input once, then measure the requested variants, each in a fresh process: the
    project (if asked, also on one worker, and the same work in 1 and N plain processes) and the
    floor in turn, `rounds` times (each takes seconds), each one's median round kept. In turn,
    because this machine's speed drifts over minutes: rounds measured in blocks minutes apart put
    the drift into the speed-up and the floor ratio."""
    directory = str(prepare(size, workdir))
    described = _describe(size)
    runs = []  # (variant, function, arguments, workers)
    if "project" in variants:
        counts = harness.worker_counts(workers, one_worker_too)
        runs += [("project", project, (directory, count), count) for count in counts]
        if one_worker_too:
            runs += [("processes", in_processes, (directory, count), count) for count in counts]
    if "floor" in variants:
        runs.append(("floor", floor, (directory,), None))
    by_run: list[list[harness.Result]] = [[] for _ in runs]
    for _ in range(rounds):
        for measured, (variant, function, arguments, count) in zip(by_run, runs, strict=True):
            measured.append(harness.measure(NAME, variant, described, function, *arguments, workers=count))
    results = [harness.median_round(measured) for measured in by_run]
    if "baseline" in variants:
        results.append(harness.measure(NAME, "baseline", described, baseline, directory))
    return results


def verdict(results: list[harness.Result]) -> tuple[bool, str]:
    """Met when the full-size project run (most workers) takes < 60 s and ≤ 2× the floor's time."""
    full = [result for result in results if result.size == _describe(FULL_SIZE)]
    projects = sorted((r for r in full if r.variant == "project"), key=lambda r: r.workers or 0)
    floors = [r for r in full if r.variant == "floor"]
    if not projects or not floors:
        return False, "no full-size project and floor runs"
    project_run, floor_run = projects[-1], floors[0]
    ratio = project_run.seconds / floor_run.seconds
    met = project_run.seconds < 60 and ratio <= 2
    return met, (
        f"project {project_run.seconds:.1f} s on {project_run.workers} workers "
        f"({project_run.rate:,.0f} items/s), {ratio:.1f}× the floor's {floor_run.seconds:.1f} s"
    )
