-- Each batch of one client's deliveries with its verdict on its current data, the export it judged
-- and when.
SELECT b.client_id, b.delivery_id, b.batch_id, g.passed, g.export_etag, g.checked_at
  FROM batches AS b
  LEFT JOIN batch_gate_status AS g USING (batch_id)
 WHERE b.client_id = $client_id
 ORDER BY b.delivery_id, b.batch_id;
