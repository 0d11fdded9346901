-- Batches whose latest run of a blocking check failed: what to send back for rework, why (the gate's
-- reason: insufficient_gold, below_threshold, ...) and whom it concerns.
SELECT batch_id, check_name, client_id, delivery_id, reason, metric, observed, observed_low, observed_high,
       threshold, failed_expectations, annotators_below, gx_result_key, checked_at
  FROM latest_gate_results
 WHERE NOT passed
 ORDER BY checked_at;
