"""A release's Croissant 1.0 card (`croissant.json`): how any Croissant loader finds, checks and reads it.

The card names every file of the release with its sha256 and describes `data/items.parquet` field by
field, so `mlcroissant` (and TFDS, Hugging Face or Kaggle through it) reads the items without knowing
annobase. Paths are relative to the card, which sits at the release root: a release is self-contained,
so reading it needs no network.
"""

from __future__ import annotations

import itertools
import os

import pyarrow as pa

from annotation_types import release_field_descriptions

CROISSANT_1_0 = "http://mlcommons.org/croissant/1.0"
PARQUET = "application/x-parquet"
ITEMS = "items"

# The @context of the Croissant 1.0 specification, key for key: mlcroissant warns about any other.
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


def croissant_data_type(arrow_type: pa.DataType) -> str:
    """The Croissant dataType of a Parquet column; JSON held as text stays sc:Text.

    Timestamps are sc:DateTime (schema.org's Date has no time of day). A type with no faithful
    Croissant counterpart (null, nested, binary) is refused: the release must write that column
    with an explicit type rather than have the card guess.
    """
    if pa.types.is_dictionary(arrow_type):
        return croissant_data_type(arrow_type.value_type)
    for is_type, data_type in (
        (pa.types.is_boolean, "sc:Boolean"),
        (pa.types.is_integer, "sc:Integer"),
        (pa.types.is_floating, "sc:Float"),
        (pa.types.is_timestamp, "sc:DateTime"),
        (pa.types.is_date, "sc:Date"),
        (pa.types.is_string, "sc:Text"),
        (pa.types.is_large_string, "sc:Text"),
        (pa.types.is_string_view, "sc:Text"),
    ):
        if is_type(arrow_type):
            return data_type
    raise ValueError(
        f"Arrow type {arrow_type} has no Croissant dataType: write the column with an explicit type"
    )


def _file_object(path: str, sha256: str, encoding_format: str) -> dict:
    return {
        "@type": "cr:FileObject",
        "@id": path,
        "name": path.rsplit("/", 1)[-1],
        "contentUrl": path,
        "encodingFormat": encoding_format,
        "sha256": sha256,
    }


def croissant_metadata(
    *,
    name: str,
    description: str,
    license: str,
    creators: list[str],
    version: str,
    date_published: str,
    citation: str | None,
    parquet_path: str,
    parquet_sha256: str,
    parquet_schema: pa.Schema,
    extra_files: list[dict],
    url: str | None = None,
) -> dict:
    """The card of one release, as JSON-LD.

    `parquet_path` and each `extra_files` entry (`path`, `sha256`, `encoding_format`) are relative to
    the release root. Every file is a cr:FileObject of its own, so the card carries each file's
    sha256. The record set `items` has one field per Parquet column, in schema order, keyed by
    `item_key`; the annotation types describe their answer columns. Creators are organisations.
    Without a citation, one is made from the creators, name, version and date, because Croissant
    recommends `citeAs` and mlcroissant warns when it is missing.
    `version` should be MAJOR.MINOR.PATCH: mlcroissant warns about any other form.
    """
    described = release_field_descriptions()
    fields = [
        {
            "@type": "cr:Field",
            "@id": f"{ITEMS}/{field.name}",
            "name": field.name,
            **({"description": described[field.name]} if field.name in described else {}),
            "dataType": croissant_data_type(field.type),
            "source": {"fileObject": {"@id": parquet_path}, "extract": {"column": field.name}},
        }
        for field in parquet_schema
    ]
    card = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CROISSANT_1_0,
        "name": name,
        "description": description,
        "license": license,
        "creator": [{"@type": "sc:Organization", "name": creator} for creator in creators],
        "version": version,
        "datePublished": date_published,
        "citeAs": citation
        or f"{', '.join(creators)}. {name}, version {version}, published {date_published}.",
        "distribution": [
            _file_object(parquet_path, parquet_sha256, PARQUET),
            *(_file_object(f["path"], f["sha256"], f["encoding_format"]) for f in extra_files),
        ],
        "recordSet": [
            {
                "@type": "cr:RecordSet",
                "@id": ITEMS,
                "name": ITEMS,
                "description": "One record per released item: its ids, files, consensus answer and quality.",
                "key": {"@id": f"{ITEMS}/item_key"},
                "field": fields,
            }
        ],
    }
    if url is not None:
        card["url"] = url
    return card


def _root_cause(error: BaseException) -> BaseException:
    """mlcroissant wraps what went wrong in GenerationErrors naming only the operation; the cause says why."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def validate_croissant(path: str | os.PathLike, records_to_read: int = 5) -> list[str]:
    """Every issue mlcroissant finds in the card at `path`, warnings included; empty when it is clean.

    Loading the card checks its structure; reading the first records of `items` is what checks the
    files behind it (present, sha256 as stated, every field's column in the Parquet file), which
    loading alone never does. The card's files are local, so nothing is downloaded.
    """
    import mlcroissant as mlc  # slow to import; only the release writer and its checks need it

    try:
        dataset = mlc.Dataset(jsonld=os.fspath(path))
    except (mlc.ValidationError, ValueError) as error:
        lines = [line.strip().removeprefix("-").strip() for line in str(error).splitlines()]
        return [line for line in lines if line and not line.startswith("Found the following")]
    issues = sorted(dataset.metadata.ctx.issues.warnings)
    try:
        for _ in itertools.islice(dataset.records(ITEMS), records_to_read):
            pass
    except (mlc.GenerationError, ValueError) as error:
        cause = _root_cause(error)
        issues.append(f"reading record set {ITEMS!r}: {type(cause).__name__}: {cause}")
    return issues
