-- Trace: every annotation of the item and the consensus it came to.
SELECT a.batch_id, a.annotator, a.annotator_email, a.ground_truth, a.lead_time,
       coalesce(a.label, a.transcript, a.boxes_json, a.part_labels_json) AS answer, a.dagster_run_id
  FROM annotations AS a
 WHERE a.item_key = $item_key
 ORDER BY a.batch_id, a.ground_truth DESC, a.annotator;
