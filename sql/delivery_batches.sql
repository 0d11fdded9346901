-- The batches cut from one delivery.
SELECT batch_id, modality, tasks, honeypots, overlap_tasks, tasks_key
  FROM batches
 WHERE client_id = $client_id AND delivery_id = $delivery_id
 ORDER BY batch_id;
