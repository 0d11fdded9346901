-- Per client: annotation batches gated and passed (the pass rate an operator follows over time).
SELECT b.client_id,
       count(*) FILTER (WHERE g.passed IS NOT NULL) AS gated,
       count(*) FILTER (WHERE g.passed) AS passed
  FROM batches AS b
  LEFT JOIN batch_gate_status AS g USING (batch_id)
 GROUP BY b.client_id
 ORDER BY b.client_id;
