-- The catalog's tables. Each table is stored as Parquet in the object store, one file per
-- delivery (catalog/{table}/{client_id}/{delivery_id}.parquet), written once by the run that
-- produced it and replaced whole when that delivery is processed again: no shared database file,
-- so concurrent runs never contend for a writer lock and a re-run never doubles a row.

-- One row per delivery and intake run outcome.
CREATE TABLE deliveries (
    client_id        VARCHAR NOT NULL,
    delivery_id      VARCHAR NOT NULL,
    industry         VARCHAR,
    modality         VARCHAR,
    task             VARCHAR,
    license          VARCHAR,
    label_set        VARCHAR[],
    status           VARCHAR NOT NULL,   -- accepted | partially_accepted | rejected
    reason           VARCHAR,            -- first delivery-level reason code when rejected
    items_listed     INTEGER NOT NULL,
    items_accepted   INTEGER NOT NULL,
    items_rejected   INTEGER NOT NULL,
    bytes_accepted   BIGINT NOT NULL,
    manifest_key     VARCHAR NOT NULL,
    manifest_etag    VARCHAR NOT NULL,
    manifest_sha256  VARCHAR NOT NULL,
    dagster_run_id   VARCHAR NOT NULL,
    ingested_at      TIMESTAMPTZ NOT NULL,
    -- true from intake's row until cleaning and batching of the same run finished the delivery: only
    -- then is that manifest version taken in (NULL in rows written before this column: finished)
    in_progress      BOOLEAN
);

-- One row per accepted file of an accepted item (a multimodal item has one row per part).
CREATE TABLE raw_items (
    item_key         VARCHAR NOT NULL,   -- {client_id}/{delivery_id}/{item_id}
    client_id        VARCHAR NOT NULL,
    delivery_id      VARCHAR NOT NULL,
    item_id          VARCHAR NOT NULL,
    part             VARCHAR NOT NULL,   -- text | audio | image
    industry         VARCHAR NOT NULL,
    modality         VARCHAR NOT NULL,
    task             VARCHAR NOT NULL,
    license          VARCHAR NOT NULL,
    upload_key       VARCHAR NOT NULL,
    sha256           VARCHAR NOT NULL,
    bytes            BIGINT NOT NULL,
    text_chars       INTEGER,            -- decoded facts, per part
    audio_seconds    DOUBLE,
    sample_rate      INTEGER,
    channels         INTEGER,
    image_width      INTEGER,
    image_height     INTEGER,
    manifest_etag    VARCHAR NOT NULL,
    dagster_run_id   VARCHAR NOT NULL,
    ingested_at      TIMESTAMPTZ NOT NULL
);

-- One row per rejection: a whole delivery (item_id NULL) or one item, with a machine-readable code.
CREATE TABLE rejections (
    client_id        VARCHAR NOT NULL,
    delivery_id      VARCHAR NOT NULL,
    item_id          VARCHAR,
    part             VARCHAR,
    code             VARCHAR NOT NULL,
    detail           VARCHAR NOT NULL,
    upload_key       VARCHAR,
    quarantine_key   VARCHAR NOT NULL,
    manifest_etag    VARCHAR NOT NULL,
    dagster_run_id   VARCHAR NOT NULL,
    rejected_at      TIMESTAMPTZ NOT NULL
);

-- One row per accepted item after cleaning: what moves on to annotation (text already PII-masked)
-- and what was dropped, with the reason and, for duplicates, the item it duplicates.
CREATE TABLE clean_items (
    item_key         VARCHAR NOT NULL,
    client_id        VARCHAR NOT NULL,
    delivery_id      VARCHAR NOT NULL,
    item_id          VARCHAR NOT NULL,
    industry         VARCHAR NOT NULL,
    modality         VARCHAR NOT NULL,
    task             VARCHAR NOT NULL,
    license          VARCHAR NOT NULL,
    text             VARCHAR,            -- masked where the industry requires it
    image_key        VARCHAR,
    audio_key        VARCHAR,
    image_width      INTEGER,
    image_height     INTEGER,
    pii_masked       INTEGER NOT NULL,   -- PII findings masked in the text
    status           VARCHAR NOT NULL,   -- kept | dropped
    drop_reason      VARCHAR,            -- exact_duplicate | near_duplicate_text | near_duplicate_image | audio_format | image_format
    drop_detail      VARCHAR,
    duplicate_of     VARCHAR,
    similarity       DOUBLE,
    dagster_run_id   VARCHAR NOT NULL,
    cleaned_at       TIMESTAMPTZ NOT NULL
);

-- One row per annotation batch (partition: the delivery whose items it carries).
CREATE TABLE batches (
    batch_id         VARCHAR NOT NULL,
    client_id        VARCHAR NOT NULL,
    delivery_id      VARCHAR NOT NULL,
    industry         VARCHAR NOT NULL,
    modality         VARCHAR NOT NULL,
    task             VARCHAR NOT NULL,
    license          VARCHAR NOT NULL,
    label_set        VARCHAR[] NOT NULL,
    parts            VARCHAR[] NOT NULL,
    tasks            INTEGER NOT NULL,
    honeypots        INTEGER NOT NULL,
    overlap_tasks    INTEGER NOT NULL,
    review_tasks     INTEGER,            -- the review sample (GB/T 2828.1, level II): gold the gate needs
    tasks_key        VARCHAR NOT NULL,
    config_key       VARCHAR NOT NULL,
    tasks_version    VARCHAR,            -- digest of the tasks and the file bytes behind them; every task carries it
    dagster_run_id   VARCHAR NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL
);

-- One row per task of a batch: which item, how many annotators it wants, whether it is a honeypot.
CREATE TABLE batch_tasks (
    batch_id         VARCHAR NOT NULL,
    task_index       INTEGER NOT NULL,
    item_key         VARCHAR NOT NULL,
    client_id        VARCHAR NOT NULL,
    delivery_id      VARCHAR NOT NULL,
    item_id          VARCHAR NOT NULL,
    annotators       INTEGER NOT NULL,
    honeypot         BOOLEAN NOT NULL,
    review           BOOLEAN             -- in the review sample: comes back with a ground_truth annotation
);

-- The references of a batch's honeypots (partition: the delivery), kept by annobase and never written
-- into tasks: the answers on return are scored against them.
CREATE TABLE honeypot_references (
    batch_id         VARCHAR NOT NULL,
    item_key         VARCHAR NOT NULL,
    client_id        VARCHAR NOT NULL,   -- of the batch, not of the honeypot item
    delivery_id      VARCHAR NOT NULL,
    source           VARCHAR NOT NULL,   -- client (its earlier gold) | starter (the base's starter set)
    result_json      VARCHAR NOT NULL    -- the Label Studio result list of the reference
);

-- Reviewed references (ground_truth annotations) from finished batches, with what a honeypot task
-- needs to be shown again (partition: the batch).
CREATE TABLE gold (
    item_key         VARCHAR NOT NULL,
    client_id        VARCHAR NOT NULL,
    delivery_id      VARCHAR NOT NULL,
    item_id          VARCHAR NOT NULL,
    modality         VARCHAR NOT NULL,
    parts            VARCHAR[] NOT NULL,
    batch_id         VARCHAR NOT NULL,
    result_json      VARCHAR NOT NULL,   -- the Label Studio result list of the reference
    text             VARCHAR,
    image_key        VARCHAR,
    audio_key        VARCHAR,
    reviewed_by      INTEGER NOT NULL,
    reviewed_at      TIMESTAMPTZ NOT NULL
);

-- One row per non-cancelled annotation of a finished batch, as parsed from Label Studio's export
-- (partition: the batch). Boxes and per-part labels are JSON text.
CREATE TABLE annotations (
    batch_id         VARCHAR NOT NULL,
    task_id          BIGINT NOT NULL,
    annotation_id    BIGINT NOT NULL,
    item_key         VARCHAR NOT NULL,
    client_id        VARCHAR NOT NULL,
    delivery_id      VARCHAR NOT NULL,
    item_id          VARCHAR NOT NULL,
    annotator        BIGINT NOT NULL,
    annotator_email  VARCHAR,             -- Label Studio's e-mail of the user, when the export names it
    ground_truth     BOOLEAN NOT NULL,
    honeypot         BOOLEAN NOT NULL,
    lead_time        DOUBLE,
    created_at       VARCHAR,
    label            VARCHAR,
    transcript       VARCHAR,
    boxes_json       VARCHAR,
    part_labels_json VARCHAR,
    export_etag      VARCHAR NOT NULL,
    dagster_run_id   VARCHAR NOT NULL,
    parsed_at        TIMESTAMPTZ NOT NULL
);

-- One row per batch: the export version its annotation rows were read from (partition:
-- client_id/batch_id), written after them. QA results, consensus and gate verdicts name this version.
CREATE TABLE exports (
    batch_id         VARCHAR NOT NULL,
    client_id        VARCHAR NOT NULL,
    delivery_id      VARCHAR NOT NULL,
    export_key       VARCHAR NOT NULL,
    export_etag      VARCHAR NOT NULL,
    export_sha256    VARCHAR NOT NULL,
    tasks_version    VARCHAR,            -- the batch version it was read against (NULL: batches cut before versions)
    annotations      INTEGER NOT NULL,
    problems         INTEGER NOT NULL,
    dagster_run_id   VARCHAR NOT NULL,
    read_at          TIMESTAMPTZ NOT NULL
);

-- What could not be read from an export: the whole export (task_id NULL) or one task.
CREATE TABLE export_problems (
    batch_id         VARCHAR NOT NULL,
    task_id          BIGINT,
    code             VARCHAR NOT NULL,
    detail           VARCHAR NOT NULL,
    quarantine_key   VARCHAR NOT NULL,
    export_etag      VARCHAR NOT NULL,
    dagster_run_id   VARCHAR NOT NULL,
    found_at         TIMESTAMPTZ NOT NULL
);

-- One row per batch: its quality against the base's thresholds (partition: the batch).
CREATE TABLE qa_results (
    batch_id                 VARCHAR NOT NULL,
    client_id                VARCHAR NOT NULL,
    delivery_id              VARCHAR NOT NULL,
    industry                 VARCHAR NOT NULL,
    modality                 VARCHAR NOT NULL,
    license                  VARCHAR NOT NULL,
    tasks                    INTEGER NOT NULL,
    unannotated_tasks        INTEGER NOT NULL,   -- tasks no annotator answered (all skipped or cancelled)
    annotations              INTEGER NOT NULL,
    gold_annotations         INTEGER NOT NULL,   -- annotators' annotations on gold tasks
    annotators               INTEGER NOT NULL,
    text_accuracy            DOUBLE,             -- label accuracy on gold (text; per part for multimodal)
    speech_accuracy          DOUBLE,             -- 1 - CER on gold
    image_box_f1             DOUBLE,             -- box F1 at IoU >= 0.5 on gold
    cross_modal_consistency  DOUBLE,
    krippendorff_alpha       DOUBLE,
    mean_item_agreement      DOUBLE,
    gold_tasks               INTEGER,            -- gold tasks (reviewed or honeypots) annotators answered
    gold_required            INTEGER,            -- the review sample size (GB/T 2828.1) the gate needs
    unreviewed_tasks         INTEGER,            -- tasks of the review sample that came back without ground truth
    gold_labels              INTEGER,            -- labels (transcripts, box sets) scored against gold
    accuracy_low             DOUBLE,             -- Wilson 95 % interval of the gated accuracy
    accuracy_high            DOUBLE,
    part_accuracy_json       VARCHAR,            -- multimodal: {part: label accuracy on gold}
    export_etag              VARCHAR,            -- the export version measured (exports)
    tasks_version            VARCHAR,            -- the batch version its tasks were read against
    dagster_run_id           VARCHAR NOT NULL,
    computed_at              TIMESTAMPTZ NOT NULL
);

-- One row per task of a batch (per part for multimodal): the consensus answer and its agreement.
CREATE TABLE consensus (
    batch_id         VARCHAR NOT NULL,
    task_id          BIGINT NOT NULL,
    item_key         VARCHAR NOT NULL,
    part             VARCHAR,
    label            VARCHAR,
    transcript       VARCHAR,
    boxes_json       VARCHAR,
    annotations      INTEGER NOT NULL,
    agreement        DOUBLE,
    honeypot         BOOLEAN NOT NULL,
    export_etag      VARCHAR             -- the export version it was agreed from
);

-- One row per annotator of a batch.
CREATE TABLE scorecards (
    batch_id                  VARCHAR NOT NULL,
    annotator                 BIGINT NOT NULL,
    annotator_email           VARCHAR,   -- from the export, when it names the user
    tasks_done                INTEGER NOT NULL,
    gold_tasks                INTEGER NOT NULL,
    gold_accuracy             DOUBLE,
    agreement_with_consensus  DOUBLE,
    median_lead_time          DOUBLE
);

-- One row per batch and blocking check run (partition: batch_id/check_name): whether the batch may
-- flow on, and if not, why and because of whom.
CREATE TABLE gate_results (
    batch_id            VARCHAR NOT NULL,
    check_name          VARCHAR NOT NULL,   -- qa_gate | qa_tables_valid
    client_id           VARCHAR NOT NULL,
    delivery_id         VARCHAR NOT NULL,
    passed              BOOLEAN NOT NULL,
    metric              VARCHAR,            -- the thresholded measure (qa_gate)
    observed            DOUBLE,
    threshold           DOUBLE,
    failed_expectations VARCHAR NOT NULL,   -- JSON list
    annotators_below    VARCHAR NOT NULL,   -- JSON list of {annotator, gold_accuracy}
    reason              VARCHAR,            -- qa_gate: passed | insufficient_gold | below_threshold | part_below_threshold | client_pairs_disagree
    observed_low        DOUBLE,             -- the observed accuracy's Wilson 95 % interval
    observed_high       DOUBLE,
    export_etag         VARCHAR,            -- the export version judged: a verdict counts only for it
    tasks_version       VARCHAR,            -- and for this version of the batch's tasks
    gx_result_key       VARCHAR NOT NULL,
    dagster_run_id      VARCHAR NOT NULL,
    checked_at          TIMESTAMPTZ NOT NULL
);

-- Rolling scorecards: one row per annotator over every batch so far (one partition, `all`).
CREATE TABLE annotator_scorecards (
    annotator                 BIGINT NOT NULL,
    annotator_email           VARCHAR,   -- the latest e-mail Label Studio gave the user
    batches                   INTEGER NOT NULL,
    tasks_done                INTEGER NOT NULL,
    gold_tasks                INTEGER NOT NULL,
    gold_accuracy             DOUBLE,
    agreement_with_consensus  DOUBLE,
    median_lead_time          DOUBLE,
    batches_blocked           INTEGER NOT NULL,
    dagster_run_id            VARCHAR NOT NULL,
    computed_at               TIMESTAMPTZ NOT NULL
);

-- One row per item of a published release (partition: industry/version): where each item went.
CREATE TABLE release_items (
    item_key         VARCHAR NOT NULL,
    industry         VARCHAR NOT NULL,
    version          VARCHAR NOT NULL,
    release          VARCHAR NOT NULL,   -- datasets/{industry}/{version}
    client_id        VARCHAR NOT NULL,
    delivery_id      VARCHAR NOT NULL,
    item_id          VARCHAR NOT NULL,
    batch_id         VARCHAR,
    dagster_run_id   VARCHAR NOT NULL,
    released_at      TIMESTAMPTZ NOT NULL
);

-- MinHash LSH buckets of every kept text, per delivery: the index a new delivery's texts are joined
-- against to find near copies anywhere in the client's history (assets/cleaning/text_history.py).
CREATE TABLE text_lsh (
    client_id    VARCHAR NOT NULL,
    delivery_id  VARCHAR NOT NULL,
    item_key     VARCHAR NOT NULL,
    buckets      BIGINT[] NOT NULL,   -- one per LSH band, the band mixed into the value
    sketch       BLOB NOT NULL        -- the low byte of each MinHash value: estimates similarity
);
