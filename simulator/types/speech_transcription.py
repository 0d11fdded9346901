"""Simulated speech transcription: spoken sentences of the client's industry (tones standing in for
speech), transcribed with each letter substituted or dropped at rate 1 - accuracy."""

from simulator.annotators import annotate_transcript, annotate_transcripts
from simulator.media import make_wav
from simulator.text_corpus import make_utterance
from simulator.types import SimulatedType, item_rng, truth_of


def _items(item_seed, industry, label_set, n_items, options):
    rng = item_rng(item_seed, "speech")
    for k in range(1, n_items + 1):
        utterance = make_utterance(rng, industry)
        yield f"i-{k:06d}", {"audio": make_wav(utterance.text, rng)}, {"transcript": utterance.text}


def _answer(parts, truth, label_set, accuracy, rng):
    return annotate_transcript(truth["transcript"], 0.0 if accuracy is None else accuracy, rng)


def _results(parts, answer):
    return [{"from_name": "transcript", "to_name": "audio", "type": "textarea", "value": {"text": [answer]}}]


SIMULATED = SimulatedType(
    modality="speech",
    task="transcription",
    items=_items,
    annotate=lambda truth, label_set, *crew: annotate_transcripts(truth_of(truth, "transcript"), *crew),
    answer=_answer,
    true_answer=lambda parts, truth: truth["transcript"],
    results=_results,
)
