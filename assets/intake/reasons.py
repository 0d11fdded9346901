"""Machine-readable reasons for what intake rejects: the code is the contract, the detail is for people."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from assets.cleaning.pii import mask_text

# delivery-level: the whole delivery is quarantined
MALFORMED_JSON = "malformed_json"
MISSING_FIELD = "missing_field"
SCHEMA_VIOLATION = "schema_violation"
UNSUPPORTED_SCHEMA = "unsupported_schema"
INVALID_ID = "invalid_id"
CLIENT_ID_MISMATCH = "client_id_mismatch"
DELIVERY_ID_MISMATCH = "delivery_id_mismatch"
UNKNOWN_INDUSTRY = "unknown_industry"
UNKNOWN_MODALITY = "unknown_modality"
TASK_MISMATCH = "task_mismatch"
MISSING_LABEL_SET = "missing_label_set"
EMPTY_DELIVERY = "empty_delivery"
INVALID_UPLOAD_KEY = "invalid_upload_key"
SYMBOLIC_LINK = "symbolic_link"  # (also item-level) a link in the local store, never followed
UNKNOWN_BATCH = "unknown_batch"  # an export under annotations/ for no batch annobase wrote

# item-level: only that item is quarantined
DUPLICATE_ITEM_ID = "duplicate_item_id"
PARTS_MISMATCH = "parts_mismatch"
PATH_ESCAPE = "path_escape"
INVALID_PATH = "invalid_path"
UNSUPPORTED_EXTENSION = "unsupported_extension"
FILE_MISSING = "file_missing"
FILE_TOO_LARGE = "file_too_large"
SIZE_MISMATCH = "size_mismatch"
SHA256_MISMATCH = "sha256_mismatch"
EMPTY_FILE = "empty_file"
NOT_UTF8 = "not_utf8"
UNDECODABLE_AUDIO = "undecodable_audio"
UNDECODABLE_IMAGE = "undecodable_image"


@dataclass(frozen=True)
class Reason:
    """Why something was rejected: a code from this module, a sentence, and where."""

    code: str
    detail: str
    item_id: str | None = None
    part: str | None = None
    path: str | None = None

    def __post_init__(self):
        # a detail and a path quote the input (a field's value, a file's name) and are read by people in
        # quarantine, the catalog, run logs and the UI: personal data in it is masked here, once
        object.__setattr__(self, "detail", mask_text(self.detail))
        object.__setattr__(self, "path", mask_text(self.path))

    def as_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}
