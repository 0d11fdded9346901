"""Simulated image detection: drawn scenes with labelled shapes, whose boxes annotators draw jittered,
miss or mislabel at their accuracy (a spammer draws anywhere)."""

from simulator.annotators import annotate_boxes, annotate_images
from simulator.media import make_jpg, make_png
from simulator.types import SimulatedType, item_rng, truth_of

IMAGE_SIZE = (320, 240)  # what simulator.media draws


def _items(item_seed, industry, label_set, n_items, options):
    rng = item_rng(item_seed, "image")
    make_image = make_png if options.image_format == "png" else make_jpg
    for k in range(1, n_items + 1):
        image, boxes = make_image(rng, label_set)
        yield f"i-{k:06d}", {"image": image}, {"boxes": boxes}


def _answer(parts, truth, label_set, accuracy, rng):
    return annotate_boxes(truth["boxes"], 0.0 if accuracy is None else accuracy, rng, label_set)


def _results(parts, answer):
    width, height = IMAGE_SIZE
    return [
        {
            "from_name": "boxes",
            "to_name": "image",
            "type": "rectanglelabels",
            "original_width": width,
            "original_height": height,
            "image_rotation": 0,
            "value": {
                "x": box["x"],
                "y": box["y"],
                "width": box["width"],
                "height": box["height"],
                "rotation": 0,
                "rectanglelabels": [box["label"]],
            },
        }
        for box in answer
    ]


SIMULATED = SimulatedType(
    modality="image",
    task="detection",
    items=_items,
    annotate=lambda truth, label_set, *crew: annotate_images(truth_of(truth, "boxes"), label_set, *crew),
    answer=_answer,
    true_answer=lambda parts, truth: [dict(box) for box in truth["boxes"]],
    results=_results,
)
