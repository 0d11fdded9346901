"""Simulated text classification: texts of the client's industry that say their label (now and then
misleadingly, and with PII where the industry has it), labelled right at each annotator's accuracy."""

from simulator.annotators import annotate_labels
from simulator.deliveries import pii_truth
from simulator.text_corpus import iter_text_items
from simulator.types import SimulatedType, choose, truth_of


def _items(item_seed, industry, label_set, n_items, options):
    for item_id, text, label, pii in iter_text_items(item_seed, industry, n_items):
        yield item_id, {"text": text.encode("utf-8")}, {"label": label, "pii": pii_truth(pii)}


def _results(parts, answer):
    return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [answer]}}]


SIMULATED = SimulatedType(
    modality="text",
    task="classification",
    items=_items,
    annotate=lambda truth, label_set, *crew: annotate_labels(truth_of(truth, "label"), label_set, *crew),
    answer=lambda parts, truth, label_set, accuracy, rng: choose(truth["label"], label_set, accuracy, rng),
    true_answer=lambda parts, truth: truth["label"],
    results=_results,
)
