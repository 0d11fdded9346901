-- Trace: the batches the item was in, and how each was gated.
SELECT t.batch_id, t.honeypot, t.annotators AS annotators_wanted, b.dagster_run_id AS batch_run_id,
       q.dagster_run_id AS qa_run_id, g.passed AS gate_passed
  FROM batch_tasks AS t
  JOIN batches AS b ON b.batch_id = t.batch_id
  LEFT JOIN qa_results AS q ON q.batch_id = t.batch_id
  LEFT JOIN batch_gate_status AS g ON g.batch_id = t.batch_id
 WHERE t.item_key = $item_key
 ORDER BY t.batch_id;
