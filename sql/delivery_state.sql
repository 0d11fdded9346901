-- One delivery as the catalog holds it now: the manifest version taken in, its license and verdict.
SELECT client_id, delivery_id, license, status, reason, manifest_etag, coalesce(in_progress, false) AS in_progress
  FROM deliveries
 WHERE client_id = $client_id AND delivery_id = $delivery_id;
