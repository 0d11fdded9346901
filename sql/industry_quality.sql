-- Per industry: annotation batches gated, passed and blocked, and the mean scores of the batches.
SELECT b.industry,
       count(*) AS batches,
       count(*) FILTER (WHERE g.passed) AS passed,
       count(*) FILTER (WHERE NOT g.passed) AS blocked,
       round(avg(q.text_accuracy), 3) AS text_accuracy,
       round(avg(q.speech_accuracy), 3) AS speech_accuracy,
       round(avg(q.cross_modal_consistency), 3) AS cross_modal,
       round(avg(q.image_box_f1), 3) AS image_box_f1
  FROM batches AS b
  LEFT JOIN batch_gate_status AS g USING (batch_id)
  LEFT JOIN qa_results AS q USING (batch_id)
 GROUP BY b.industry
 ORDER BY b.industry;
