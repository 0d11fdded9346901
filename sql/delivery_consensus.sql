-- The consensus of one delivery's own items (honeypots from other deliveries excluded), latest batch first.
SELECT c.*
  FROM consensus AS c
  JOIN batches AS b USING (batch_id)
 WHERE b.client_id = $client_id AND b.delivery_id = $delivery_id AND NOT c.honeypot
 ORDER BY c.item_key, c.part;
