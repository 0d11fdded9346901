-- Every batch of one delivery with the outcome of its gate on its current data (NULL: not gated yet)
-- and the export version that verdict judged.
SELECT b.batch_id, l.passed, l.export_etag
  FROM batches AS b
  LEFT JOIN batch_gate_status AS l USING (batch_id)
 WHERE b.client_id = $client_id AND b.delivery_id = $delivery_id
 ORDER BY b.batch_id;
