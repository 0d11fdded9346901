-- Consensus labels of this client's text batches with the (masked) texts they label and the delivery
-- they came from: what the pre-annotation model of a new delivery learns from (its own excluded).
SELECT b.delivery_id, ci.text, c.label
  FROM consensus AS c
  JOIN batches AS b USING (batch_id)
  JOIN clean_items AS ci ON ci.item_key = c.item_key
 WHERE b.client_id = $client_id AND b.modality = 'text'
   AND NOT c.honeypot AND c.label IS NOT NULL AND ci.text IS NOT NULL
 ORDER BY c.item_key;
