-- Every annotation batch, oldest delivery first.
SELECT batch_id, client_id, delivery_id, modality, tasks FROM batches ORDER BY batch_id;
