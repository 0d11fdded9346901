-- An item's files as they were uploaded: the start of its trace.
SELECT item_key, part, upload_key, sha256, bytes, industry, modality, license, manifest_etag,
       dagster_run_id, ingested_at
  FROM raw_items
 WHERE item_key = $item_key
 ORDER BY part;
