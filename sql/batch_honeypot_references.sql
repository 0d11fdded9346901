-- The references of one batch's honeypots: annobase scores the answers against them on return.
SELECT item_key, result_json
  FROM honeypot_references
 WHERE client_id = $client_id AND batch_id = $batch_id
 ORDER BY item_key;
