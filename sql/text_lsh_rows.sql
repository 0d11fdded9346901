-- The `text_lsh` rows named by row id (`wanted_rows`: rid): the earlier texts a delivery's candidates
-- point at, with their sketches.
SELECT t.rowid AS rid, t.item_key, t.delivery_id, t.sketch
  FROM text_lsh AS t
 WHERE t.rowid IN (SELECT rid FROM wanted_rows)
 ORDER BY rid;
