-- Each of one client's batches with the export version its annotations were last read from (NULL: none).
SELECT b.batch_id, e.export_etag
  FROM batches AS b
  LEFT JOIN exports AS e USING (batch_id)
 WHERE b.client_id = $client_id
 ORDER BY b.batch_id;
