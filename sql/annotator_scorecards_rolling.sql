-- Per annotator over every batch so far: how much, how well (gold accuracy weighted by gold tasks),
-- how consistent with the consensus, how fast, and in how many batches whose latest gate failed.
SELECT s.annotator,
       arg_max(s.annotator_email, s.batch_id) FILTER (WHERE s.annotator_email IS NOT NULL) AS annotator_email,
       count(*)::INTEGER AS batches,
       sum(s.tasks_done)::INTEGER AS tasks_done,
       sum(s.gold_tasks)::INTEGER AS gold_tasks,
       sum(s.gold_accuracy * s.gold_tasks) FILTER (WHERE s.gold_accuracy IS NOT NULL)
           / nullif(sum(s.gold_tasks) FILTER (WHERE s.gold_accuracy IS NOT NULL), 0) AS gold_accuracy,
       sum(s.agreement_with_consensus * s.tasks_done) FILTER (WHERE s.agreement_with_consensus IS NOT NULL)
           / nullif(sum(s.tasks_done) FILTER (WHERE s.agreement_with_consensus IS NOT NULL), 0)
           AS agreement_with_consensus,
       median(s.median_lead_time) AS median_lead_time,
       (count(*) FILTER (WHERE NOT g.passed))::INTEGER AS batches_blocked
  FROM scorecards AS s
  LEFT JOIN batch_gate_status AS g USING (batch_id)
 GROUP BY s.annotator
 ORDER BY s.annotator;
