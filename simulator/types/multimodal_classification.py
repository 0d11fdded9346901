"""Simulated multimodal classification: an image, a text and sometimes a recording, each made to show
its own label (they mostly agree), each labelled on its own at the annotator's accuracy."""

from simulator.annotators import annotate_part_labels
from simulator.deliveries import pii_truth
from simulator.media import make_jpg, make_png, make_wav
from simulator.text_corpus import make_text, make_utterance
from simulator.types import SimulatedType, choose, item_rng, truth_of

AUDIO_PART_RATE = 0.3  # share of items that also carry a recording


def _item(rng, industry, labels, disagreement_rate, make_image):
    label = rng.choice(labels)
    names = ["image", "text"] + (["audio"] if rng.random() < AUDIO_PART_RATE else [])
    part_labels = dict.fromkeys(names, label)
    if rng.random() < disagreement_rate:
        part_labels[rng.choice(names)] = rng.choice([other for other in labels if other != label])
    text = make_text(rng, industry, part_labels["text"])
    parts = {"image": make_image(rng, [part_labels["image"]])[0], "text": text.text.encode("utf-8")}
    truth = {"label": label, "part_labels": part_labels, "pii": pii_truth(text.pii_spans)}
    if "audio" in part_labels:
        utterance = make_utterance(rng, industry, part_labels["audio"])
        parts["audio"] = make_wav(utterance.text, rng)
        truth["transcript"] = utterance.text
    return parts, truth


def _items(item_seed, industry, label_set, n_items, options):
    rng = item_rng(item_seed, "multimodal")
    make_image = make_png if options.image_format == "png" else make_jpg
    for k in range(1, n_items + 1):
        yield f"i-{k:06d}", *_item(rng, industry, label_set, options.disagreement_rate, make_image)


def _answer(parts, truth, label_set, accuracy, rng):
    labels = truth.get("part_labels") or {}
    return {part: choose(labels.get(part, truth.get("label")), label_set, accuracy, rng) for part in parts}


def _results(parts, answer):
    return [
        {
            "from_name": f"label_{part}",
            "to_name": part,
            "type": "choices",
            "value": {"choices": [answer[part]]},
        }
        for part in parts
    ]


SIMULATED = SimulatedType(
    modality="multimodal",
    task="classification",
    items=_items,
    annotate=lambda truth, label_set, *crew: annotate_part_labels(
        truth_of(truth, "part_labels"), label_set, *crew
    ),
    answer=_answer,
    true_answer=lambda parts, truth: {
        part: (truth.get("part_labels") or {}).get(part, truth.get("label")) for part in parts
    },
    results=_results,
)
