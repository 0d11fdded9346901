-- Every batch of one delivery with the outcome of its latest gate (NULL: not gated yet).
SELECT b.batch_id, l.passed
  FROM batches AS b
  LEFT JOIN batch_gate_status AS l USING (batch_id)
 WHERE b.client_id = $client_id AND b.delivery_id = $delivery_id
 ORDER BY b.batch_id;
