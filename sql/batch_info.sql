-- One batch as annotation_batches cut it.
SELECT * FROM batches WHERE batch_id = $batch_id;
