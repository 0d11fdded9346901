-- Files this client delivered before (any other delivery): sha256 -> the first item that had it.
SELECT sha256, min(item_key) AS item_key
  FROM raw_items
 WHERE client_id = $client_id AND delivery_id <> $delivery_id
 GROUP BY sha256;
