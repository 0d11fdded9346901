"""`python -m benchmarks.oc`: the quality gate's operating characteristic, by simulation.

For crews of a known true accuracy and batches of a given number of own tasks, the share of batches
the gate passes. Each batch is planned by annobase's own `plan_batches` (review sample of GB/T 2828.1,
overlap, honeypots from a starter set) and judged by the gate's own `gold_verdict`; what is drawn at
random is only whether each gold label an annotator gives is right (each with the crew's accuracy),
which is all the verdict reads. `--write` replaces the OC section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from annobase.keys import DeliveryRef
from annobase.settings import load_settings
from assets.annotation.batching import plan_batches
from assets.quality.gold_sampling import code_letter, gold_verdict, review_sample_size

ACCURACIES = (0.90, 0.93, 0.95, 0.97, 0.98, 0.99)
BATCH_SIZES = (20, 50, 200, 1000)
LIMITING, ACCEPTABLE = 0.90, 0.98  # a 0.90 crew passes <= 5 %, a 0.98 crew is blocked <= 5 %
RISK = 0.05
STARTER_SET = 1000  # honeypots drawn from a starter set this big
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEGIN, END = "<!-- oc:begin -->", "<!-- oc:end -->"


def gold_plan(batch_size: int, honeypots: bool) -> tuple[int, int, int]:
    """(gold tasks, gold labels, required gold tasks) of one batch of `batch_size` own tasks, as
    annobase plans it: every gold label is one annotator's answer on a reviewed task or honeypot."""
    settings = replace(load_settings().annotation, batch_size=batch_size)
    parts = ("text",)
    items = {parts: [f"c/d/i-{n:06d}" for n in range(batch_size)]}
    gold = {parts: [f"annobase/starter/g-{n:06d}" for n in range(STARTER_SET)]} if honeypots else {}
    [batch] = plan_batches(DeliveryRef("c", f"oc-{batch_size}"), items, gold, settings)
    scored = [task for task in batch.tasks if task.review or task.honeypot]
    return len(scored), sum(task.annotators for task in scored), review_sample_size(batch_size)


def share_passed(
    accuracy: float, batch_size: int, honeypots: bool, runs: int, rng: np.random.Generator
) -> float:
    tasks, labels, required = gold_plan(batch_size, honeypots)
    threshold = load_settings().thresholds["text_accuracy"]
    errors = rng.binomial(labels, 1 - accuracy, size=runs)
    passed = [gold_verdict(tasks, required, 1 - e / labels, threshold).passed for e in errors]
    return float(np.mean(passed))


def table(runs: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    lines = []
    for honeypots in (True, False):
        source = "review sample + honeypots (10 %, 3 answers each)" if honeypots else "review sample only"
        lines += [
            f"**Gold: {source}.** Share of batches passed ({runs:,} simulated batches per cell).",
            "",
            "| own tasks | code letter | review sample | gold tasks | gold labels | "
            + " | ".join(f"crew {a:.2f}" for a in ACCURACIES)
            + " | tells 0.90 from 0.98 |",
            "|---|---|---|---|---|" + "---|" * len(ACCURACIES) + "---|",
        ]
        for size in BATCH_SIZES:
            tasks, labels, required = gold_plan(size, honeypots)
            shares = {a: share_passed(a, size, honeypots, runs, rng) for a in ACCURACIES}
            apart = shares[LIMITING] <= RISK and 1 - shares[ACCEPTABLE] <= RISK
            lines.append(
                f"| {size:,} | {code_letter(size)} | {required} | {tasks} | {labels} | "
                + " | ".join(f"{shares[a]:.1%}" for a in ACCURACIES)
                + f" | {'yes' if apart else 'no'} |"
            )
        lines.append("")
    return "\n".join(lines)


HEADING = "## oc: the quality gate's operating characteristic"
READING = """Written by `python -m benchmarks.oc --write` (the gate's own planning and verdict; only the
right or wrong of each gold label is drawn). The rule (README, "Hidden gold"): a batch passes when
its accuracy on gold meets the threshold (0.95 for labels), on no fewer gold tasks than the GB/T
2828.1 review sample of its size; fewer is `insufficient_gold`. A crew at the threshold passes about
half the time at every size, as it should; how steep the curve is around it is set by the gold.

Target: a 0.90 crew passes <= 5 % and a 0.98 crew is blocked <= 5 %. With honeypots (a client's
earlier gold or the base's starter set) the plan tells them apart from 200 tasks on (116 gold
labels). It cannot at 20 and 50 tasks: 13 and 25 gold labels leave no acceptance number with both
risks under 5 % (on 25 labels, the one that blocks a 0.98 crew at most 5 % of the time, 2 errors,
lets a 0.90 crew through 54 % of the time); the point estimate splits the two risks instead (27 %
and 9 % at 50 tasks). On the review sample alone it needs 1,000 tasks. The batch size is 50 by
default, so most batches sit where one batch's gold cannot tell: there a client is protected only
by every batch of a delivery having to pass and by the rolling annotator scorecards; pooling the
gold of a delivery's batches into one verdict would move it into the range that can (not built)."""


def section(runs: int) -> str:
    return f"{BEGIN}\n{HEADING}\n\n{READING}\n\n{table(runs)}\n{END}"


def kept_section(results: Path = RESULTS) -> str | None:
    """The OC section of an existing RESULTS.md, for `python -m benchmarks` to carry over."""
    match = re.search(re.escape(BEGIN) + ".*?" + re.escape(END), results.read_text(), flags=re.S)
    return match.group(0) if match else None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.oc", description=__doc__)
    parser.add_argument("--runs", type=int, default=20000, help="simulated batches per cell")
    parser.add_argument("--write", action="store_true", help="replace the OC section of RESULTS.md")
    args = parser.parse_args()
    block = section(args.runs)
    print(block)
    if args.write:
        document = RESULTS.read_text()
        if kept_section() is not None:
            pattern = re.escape(BEGIN) + ".*?" + re.escape(END)
            document = re.sub(pattern, lambda _: block, document, flags=re.S)
        else:
            document = document.rstrip("\n") + "\n\n" + block + "\n"
        RESULTS.write_text(document)


if __name__ == "__main__":
    main()
