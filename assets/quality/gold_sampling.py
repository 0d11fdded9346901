"""How much gold a batch needs and how a verdict stands on it: GB/T 2828.1 (ISO 2859-1) sample sizes
and the accuracy's 95 % interval.

The sampling plan: a batch of N own tasks is a lot; the review sample is the single-sampling size of
its code letter under normal inspection, general inspection level II. The batch is judged on its gold
tasks (reviewed and honeypots): fewer than the sample size is `insufficient_gold`, never a pass.

How threshold and plan combine (README, "Hidden gold"): the point estimate against the threshold is
the verdict (an acceptance number Ac = floor(m * (1 - threshold)) errors on m gold labels), on no
fewer gold tasks than the plan's sample; the Wilson 95 % interval is reported beside it so a reader
sees how sure the verdict is. The operating characteristic this gives is measured in
`benchmarks/oc.py` and written to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

# (largest lot size, code letter), general inspection level II (GB/T 2828.1-2012 table 1)
CODE_LETTERS = (
    (8, "A"),
    (15, "B"),
    (25, "C"),
    (50, "D"),
    (90, "E"),
    (150, "F"),
    (280, "G"),
    (500, "H"),
    (1200, "J"),
    (3200, "K"),
    (10000, "L"),
    (35000, "M"),
    (150000, "N"),
    (500000, "P"),
    (float("inf"), "Q"),
)
# code letter -> sample size, single sampling, normal inspection (GB/T 2828.1-2012 table 2-A)
SAMPLE_SIZES = {
    "A": 2,
    "B": 3,
    "C": 5,
    "D": 8,
    "E": 13,
    "F": 20,
    "G": 32,
    "H": 50,
    "J": 80,
    "K": 125,
    "L": 200,
    "M": 315,
    "N": 500,
    "P": 800,
    "Q": 1250,
}
CONFIDENCE = 0.95

# verdict reasons (gate_results.reason)
PASSED = "passed"
INSUFFICIENT_GOLD = "insufficient_gold"
BELOW_THRESHOLD = "below_threshold"
PART_BELOW_THRESHOLD = "part_below_threshold"
PAIRS_DISAGREE = "client_pairs_disagree"  # every part accurate, the client's parts truly differ


def code_letter(lot_size: int) -> str:
    """The sample size code letter of a lot of `lot_size` tasks (general inspection level II)."""
    if lot_size < 2:
        return "A"
    return CODE_LETTERS[bisect.bisect_left([limit for limit, _ in CODE_LETTERS], lot_size)][1]


def review_sample_size(lot_size: int) -> int:
    """How many of a batch's own tasks a reviewer labels as ground truth: never more than there are."""
    return min(lot_size, SAMPLE_SIZES[code_letter(lot_size)])


def wilson_interval(successes: float, trials: float) -> tuple[float, float] | tuple[None, None]:
    """The 95 % Wilson score interval of a proportion; a fractional count (a mean score times its
    trials, for 1 - CER and box F1) is rounded to whole successes."""
    if not trials:
        return None, None
    from scipy.stats import binomtest

    n = round(trials)
    k = min(n, max(0, round(successes)))
    interval = binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(interval.low), float(interval.high)


@dataclass(frozen=True)
class GoldVerdict:
    passed: bool
    reason: str
    detail: str


def gold_verdict(
    gold_tasks: int,
    required: int,
    accuracy: float | None,
    threshold: float,
    part_accuracy: dict[str, float | None] | None = None,
    part_thresholds: dict[str, float] | None = None,
    consistency: tuple[float | None, float] | None = None,
) -> GoldVerdict:
    """The gate's business verdict. Multimodal batches give `part_accuracy` (each part's label
    accuracy on gold, held to `part_thresholds` or `threshold`) and `consistency` (observed,
    threshold), judged after the parts: parts that disagree while each is accurate are the client's."""
    if gold_tasks < required:
        return GoldVerdict(
            False, INSUFFICIENT_GOLD, f"{gold_tasks} gold tasks answered, the sampling plan needs {required}"
        )
    if part_accuracy is not None:
        # each part on its own first: an accurate part must not hide a careless one in the average
        low_parts = {
            part: value
            for part, value in part_accuracy.items()
            if value is None or value < (part_thresholds or {}).get(part, threshold)
        }
        if low_parts or not part_accuracy:
            listed = ", ".join(f"{part} {_shown(value)}" for part, value in sorted(low_parts.items()))
            return GoldVerdict(
                False,
                PART_BELOW_THRESHOLD,
                f"parts below accuracy {threshold} on gold: {listed or 'none measured'}",
            )
    if accuracy is None or accuracy < threshold:
        return GoldVerdict(False, BELOW_THRESHOLD, f"accuracy on gold {_shown(accuracy)} < {threshold}")
    if consistency is not None:
        observed, bar = consistency
        if observed is not None and observed < bar:
            return GoldVerdict(
                False,
                PAIRS_DISAGREE,
                f"cross-modal consistency {observed:.4f} < {bar}, but every part is accurate on gold: "
                "the client's parts truly disagree, not the annotators",
            )
    return GoldVerdict(True, PASSED, "accuracy on gold meets the threshold")


def _shown(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.4f}"
