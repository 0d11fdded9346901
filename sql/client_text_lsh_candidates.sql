-- Kept texts of the client's earlier deliveries (by row) that share an LSH bucket with a text of this
-- delivery (`incoming_buckets`: idx, bucket), to be confirmed. "Earlier" is delivery id order, as for
-- exact duplicates. Row ids and indexes only: templated notes make hundreds of thousands of pairs.
WITH earlier AS (
    SELECT rowid AS rid, unnest(buckets) AS bucket
      FROM text_lsh
     WHERE client_id = $client_id AND delivery_id < $delivery_id
)
SELECT DISTINCT n.idx, e.rid
  FROM incoming_buckets AS n
  JOIN earlier AS e USING (bucket);
