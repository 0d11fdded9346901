-- The batches of one delivery with the Dagster runs that read, measured and gated them.
SELECT b.batch_id,
       any_value(q.dagster_run_id) AS qa_run_id,
       string_agg(DISTINCT g.dagster_run_id, ',') AS gate_run_ids
  FROM batches AS b
  LEFT JOIN qa_results AS q USING (batch_id)
  LEFT JOIN latest_gate_results AS g USING (batch_id)
 WHERE b.client_id = $client_id AND b.delivery_id = $delivery_id
 GROUP BY b.batch_id
 ORDER BY b.batch_id;
