-- Files this client delivered before: sha256 -> the first item that had it. "Before" is delivery id
-- order (ids are dated, d-2026-11-20-001), not processing order, so when two deliveries share a
-- file the same one keeps it however their runs interleave.
SELECT sha256, min(item_key) AS item_key
  FROM raw_items
 WHERE client_id = $client_id AND delivery_id < $delivery_id
 GROUP BY sha256;
