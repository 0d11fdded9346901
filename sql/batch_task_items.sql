-- The tasks of one batch, with the content a gold reference needs to be shown again as a honeypot.
SELECT t.item_key, t.honeypot, coalesce(t.review, false) AS review, c.text, c.image_key, c.audio_key
  FROM batch_tasks AS t
  LEFT JOIN clean_items AS c USING (item_key)
 WHERE t.batch_id = $batch_id;
