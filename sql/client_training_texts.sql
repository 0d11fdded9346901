-- Consensus labels of this client's earlier text batches with the (masked) texts they label: what the
-- pre-annotation model learns from.
SELECT ci.text, c.label
  FROM consensus AS c
  JOIN batches AS b USING (batch_id)
  JOIN clean_items AS ci ON ci.item_key = c.item_key
 WHERE b.client_id = $client_id AND b.modality = 'text' AND b.delivery_id <> $delivery_id
   AND NOT c.honeypot AND c.label IS NOT NULL AND ci.text IS NOT NULL
 ORDER BY c.item_key;
