-- Reviewed references (gold) of this client's earlier batches for one modality and part set:
-- the honeypots of its next batches. Latest review per item wins.
SELECT *
  FROM gold
 WHERE client_id = $client_id AND modality = $modality AND parts = $parts AND delivery_id <> $delivery_id
QUALIFY row_number() OVER (PARTITION BY item_key ORDER BY reviewed_at DESC) = 1
 ORDER BY item_key;
