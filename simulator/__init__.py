"""The outside world: simulated clients uploading data to the base (and, later, annotators).

Nothing here is part of annobase. It plays the people and programs the platform serves, so the
platform can be demonstrated and tested end to end: clients with their industries and label sets,
their Chinese text, WAV and PNG/JPEG files, deliveries laid out as CONTRACT.md sections 1-2, and
deliveries broken in each way intake must catch. Everything is deterministic from a seed and
carries its truth (labels, transcripts, boxes, PII) for the tests to compare against.
"""

from simulator.bad_deliveries import FAILURE_MODES, BadDelivery, all_bad_deliveries, upload_bad_delivery
from simulator.clients import CLIENTS, LABEL_SETS, MODALITY_TASKS, Client, label_set
from simulator.deliveries import (
    SimulatedDelivery,
    encode_manifest,
    make_delivery,
    put_delivery,
    resend_edited,
    upload_delivery,
    upload_text_delivery,
)
from simulator.media import make_jpg, make_png, make_wav
from simulator.text_corpus import (
    PII,
    TextItem,
    TextSample,
    invalid_resident_id,
    is_valid_resident_id,
    iter_text_items,
    make_text,
    make_utterance,
    resident_id_check_digit,
    valid_resident_id,
)

__all__ = [
    "CLIENTS",
    "FAILURE_MODES",
    "LABEL_SETS",
    "MODALITY_TASKS",
    "PII",
    "BadDelivery",
    "Client",
    "SimulatedDelivery",
    "TextItem",
    "TextSample",
    "all_bad_deliveries",
    "encode_manifest",
    "invalid_resident_id",
    "is_valid_resident_id",
    "iter_text_items",
    "label_set",
    "make_delivery",
    "make_jpg",
    "make_png",
    "make_text",
    "make_utterance",
    "make_wav",
    "put_delivery",
    "resend_edited",
    "resident_id_check_digit",
    "upload_bad_delivery",
    "upload_delivery",
    "upload_text_delivery",
    "valid_resident_id",
]
