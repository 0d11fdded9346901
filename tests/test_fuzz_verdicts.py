"""Property-based tests (issue 14 §1): any manifest and any Label Studio export gets a verdict with a
reason, never an unhandled exception.

Inputs are real documents (the simulator's manifests, Label Studio 1.23.2's own exports) mutated
field by field into arbitrary JSON (deleted keys, values of other types, control characters, huge
numbers, nested junk), plus raw byte damage. A few hundred examples run by default; the `long` run
takes 10,000 of each and prints its figures (RELIABILITY.md, "Poison input").
"""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annobase.keys import DeliveryRef
from annobase.settings import load_settings
from assets.annotation import label_studio_export as ls
from assets.intake import reasons as r
from assets.intake.manifest import DeliveryRejected, ParsedManifest, parse_manifest
from simulator import encode_manifest, make_delivery

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "label-studio"
REF = DeliveryRef("jinneng-mine-safety", "d-001")
MANIFESTS = [
    make_delivery(seed, REF.client_id, REF.delivery_id, modality, 3).manifest
    for seed, modality in enumerate(("text", "speech", "image", "multimodal"))
]
EXPORTS = {
    modality: json.loads((FIXTURES / f"{modality}.export.json").read_text())
    for modality in ("text", "speech", "image", "multimodal")
}
LABELS = {
    "text": ["hazard", "normal"],
    "speech": [],
    "image": ["statue", "niche"],
    "multimodal": ["hazard", "normal"],
}
REASON_CODES = {value for name, value in vars(r).items() if name.isupper() and isinstance(value, str)}
EXPORT_CODES = {value for name, value in vars(ls).items() if name.isupper() and isinstance(value, str)}
MAX_DETAIL = 2 * r.DETAIL_CHARS

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**301)  # far past any size, still convertible
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["", "\n", "i-1\n", "\x00", "../../etc/passwd", "a" * 5_000, "ＡＢＣ", "\u202e"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _slots(document) -> list[tuple[object, object]]:
    """Every (container, key or index) inside a JSON document."""
    found, pending = [], [document]
    while pending:
        node = pending.pop()
        pairs = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in pairs:
            found.append((node, key))
            pending.append(value)
    return found


@st.composite
def mutated(draw, bases: list) -> object:
    """One of `bases`, with one to four fields replaced by arbitrary JSON or removed."""
    document = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(document)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        if draw(st.booleans()) and isinstance(container, dict):
            del container[key]
        else:
            container[key] = draw(json_values)
    return document


def damaged(raw: bytes):
    """The bytes with a slice replaced by arbitrary bytes."""
    return st.tuples(st.integers(0, len(raw)), st.integers(0, 64), st.binary(max_size=64)).map(
        lambda cut: raw[: cut[0]] + cut[2] + raw[cut[0] + cut[1] :]
    )


manifest_inputs = st.one_of(
    mutated(MANIFESTS).map(lambda document: json.dumps(document, ensure_ascii=False).encode()),
    st.sampled_from([encode_manifest(m) for m in MANIFESTS]).flatmap(damaged),
    st.binary(max_size=200),
)
export_inputs = st.tuples(
    st.sampled_from(sorted(EXPORTS)),
    st.one_of(
        st.sampled_from(sorted(EXPORTS)).flatmap(
            lambda m: mutated([EXPORTS[m]]).map(lambda document: json.dumps(document).encode())
        ),
        st.sampled_from([json.dumps(e).encode() for e in EXPORTS.values()]).flatmap(damaged),
        st.binary(max_size=200),
    ),
)


def manifest_verdict(raw: bytes) -> str:
    """accepted / partially_accepted / a delivery rejection code; fails the test on anything else."""
    try:
        parsed = parse_manifest(raw, REF, load_settings())
    except DeliveryRejected as rejected:
        assert rejected.reasons, "a rejection without a reason"
        for reason in rejected.reasons:
            assert reason.code in REASON_CODES and reason.detail and len(reason.detail) <= MAX_DETAIL
        return rejected.reasons[0].code
    assert isinstance(parsed, ParsedManifest)
    for item in parsed.rejected:
        assert item.reasons, "an item refused without a reason"
        for reason in item.reasons:
            assert reason.code in REASON_CODES and reason.detail and len(reason.detail) <= MAX_DETAIL
    return "partially_accepted" if parsed.rejected else "accepted"


def export_verdict(modality: str, raw: bytes) -> str:
    try:
        parsed = ls.parse_export(raw, "b-001", modality, LABELS[modality])
    except ls.ExportRejected as rejected:
        assert rejected.reasons and all(reason.code in EXPORT_CODES for reason in rejected.reasons)
        return rejected.reasons[0].code
    for problem in parsed.problems:
        assert problem.code in EXPORT_CODES and problem.detail
    return "with_problems" if parsed.problems else "clean"


FAST = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
LONG = settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(manifest_inputs)
def test_any_manifest_gets_a_verdict_with_a_reason(raw):
    manifest_verdict(raw)


@FAST
@given(export_inputs)
def test_any_label_studio_export_gets_a_verdict(case):
    export_verdict(*case)


@pytest.mark.long
@pytest.mark.parametrize("kind", ["manifest", "export"])
def test_ten_thousand_inputs_each_get_a_verdict(kind, capsys):
    """The long run; prints how the verdicts fell and how long they took, for RELIABILITY.md."""
    verdicts: Counter[str] = Counter()
    strategy, judge = (
        (manifest_inputs, manifest_verdict)
        if kind == "manifest"
        else (export_inputs, lambda c: export_verdict(*c))
    )

    @LONG
    @given(strategy)
    def judged(case):
        verdicts[judge(case)] += 1

    started = time.perf_counter()
    judged()
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        total = sum(verdicts.values())
        print(f"\n{kind}: {total} inputs in {elapsed:.1f} s, 0 unhandled; {dict(verdicts.most_common())}")
    assert sum(verdicts.values()) >= 10_000
