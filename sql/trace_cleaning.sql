-- Trace: what cleaning did with the item.
SELECT status, drop_reason, drop_detail, duplicate_of, pii_masked, dagster_run_id, cleaned_at
  FROM clean_items
 WHERE item_key = $item_key;
