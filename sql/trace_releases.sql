-- Trace: every release that holds the item.
SELECT release, version, batch_id, dagster_run_id, released_at
  FROM release_items
 WHERE item_key = $item_key
 ORDER BY released_at;
