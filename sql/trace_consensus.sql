-- Trace: the consensus answer(s) of the item.
SELECT batch_id, part, coalesce(label, transcript, boxes_json) AS answer, annotations, agreement
  FROM consensus
 WHERE item_key = $item_key
 ORDER BY batch_id, part;
