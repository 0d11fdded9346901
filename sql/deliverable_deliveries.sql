-- Deliveries whose every batch passed its latest gate.
SELECT b.client_id, b.delivery_id
  FROM batches AS b
  LEFT JOIN batch_gate_status AS g USING (batch_id)
 GROUP BY b.client_id, b.delivery_id
HAVING bool_and(coalesce(g.passed, false))
 ORDER BY b.client_id, b.delivery_id;
