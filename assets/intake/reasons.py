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
DUPLICATE_KEY = "duplicate_key"  # a JSON object naming one key twice: which value counts is ambiguous
INVALID_LABEL = "invalid_label"  # a label with control characters (it would reach XML and annotators)
SYMBOLIC_LINK = "symbolic_link"  # (also item-level) a link in the local store, never followed
UNKNOWN_BATCH = "unknown_batch"  # an export under annotations/ for no batch annobase wrote
# limits of the configuration ([intake] in annobase.toml): refused before the rest is looked at
MANIFEST_TOO_LARGE = "manifest_too_large"
TOO_MANY_ITEMS = "too_many_items"
LABEL_SET_TOO_LARGE = "label_set_too_large"
# anything that went wrong while taking the delivery in that no other code names: the exception's
# class and message, cut short; the delivery is quarantined and the other deliveries of the run go on
INTERNAL_ERROR = "internal_error"

# item-level: only that item is quarantined
DUPLICATE_ITEM_ID = "duplicate_item_id"
PARTS_MISMATCH = "parts_mismatch"
DUPLICATE_FILE = "duplicate_file"  # a file another item of the delivery already names
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
TEXT_TOO_LARGE = "text_too_large"

# how much of anything a client wrote a detail may quote
DETAIL_CHARS = 300


def shorten(value: object, limit: int = DETAIL_CHARS) -> str:
    """`value` as text of at most `limit` characters (its repr for non-strings, control characters
    escaped): a rejection never echoes a client's megabytes back into logs, metadata and the catalog."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except ValueError:  # an int too long for str() (Python's 4,300-digit limit)
        text = f"<a {type(value).__name__} too large to show>"
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


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
        # quarantine, the catalog, run logs and the UI: personal data in it is masked here, once, and
        # every detail is bounded where it is made (the code says what, the detail only helps a person);
        # masked before the final cut, so that no number is cut in half and left readable
        detail = mask_text(self.detail[: 4 * DETAIL_CHARS])
        if len(detail) > 2 * DETAIL_CHARS:
            detail = shorten(detail, 2 * DETAIL_CHARS)
        object.__setattr__(self, "detail", detail)
        object.__setattr__(self, "path", mask_text(self.path))

    def as_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}
