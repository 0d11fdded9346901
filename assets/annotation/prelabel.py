"""Machine pre-annotation ("machine + human"): a pre-label and a confidence for each text task.

The model is honest and small: multinomial naive Bayes over hashed character bigrams, trained on
the consensus labels of the same client's earlier batches. Where there is nothing to learn from
(a client's first delivery, speech, images) there is no model and no pre-label, rather than a
guess dressed up as one.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

MODEL_VERSION = "char-bigram-nb-v1"
MIN_TRAINING_TEXTS = 20
BUCKETS = 1 << 16


def _bigram_ids(text: str) -> np.ndarray:
    return np.array(
        [zlib.crc32(text[i : i + 2].encode()) % BUCKETS for i in range(len(text) - 1)], dtype=np.int64
    )


@dataclass(frozen=True)
class LabelModel:
    labels: list[str]
    log_prior: np.ndarray  # [labels]
    log_likelihood: np.ndarray  # [labels, buckets]
    trained_on: int

    @property
    def version(self) -> str:
        return f"{MODEL_VERSION}-n{self.trained_on}"

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """The most likely label of each text and its posterior probability."""
        predictions = []
        for text in texts:
            scores = self.log_prior + self.log_likelihood[:, _bigram_ids(text)].sum(axis=1)
            posterior = np.exp(scores - scores.max())
            posterior /= posterior.sum()
            best = int(np.argmax(posterior))
            predictions.append((self.labels[best], round(float(posterior[best]), 4)))
        return predictions


def train_label_model(texts: list[str], labels: list[str], label_set: list[str]) -> LabelModel | None:
    """Laplace-smoothed naive Bayes; None with fewer than MIN_TRAINING_TEXTS examples."""
    if len(texts) < MIN_TRAINING_TEXTS:
        return None
    index = {label: position for position, label in enumerate(label_set)}
    counts = np.ones((len(label_set), BUCKETS))
    documents = np.ones(len(label_set))
    for text, label in zip(texts, labels, strict=True):
        if label in index:
            np.add.at(counts[index[label]], _bigram_ids(text), 1)
            documents[index[label]] += 1
    return LabelModel(
        labels=list(label_set),
        log_prior=np.log(documents / documents.sum()),
        log_likelihood=np.log(counts / counts.sum(axis=1, keepdims=True)),
        trained_on=len(texts),
    )
