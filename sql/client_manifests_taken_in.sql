-- The manifest version of each of one client's deliveries that the catalog records as taken in:
-- every intake step of it finished.
SELECT client_id || '/' || delivery_id AS partition, manifest_etag
  FROM deliveries
 WHERE client_id = $client_id AND NOT coalesce(in_progress, false);
