-- The catalog's verdicts that let a client's data flow on (one client's, or every client's when
-- $client_id is NULL), each of which the provenance ledger records before the catalog does
-- (`annobase ledger verify` looks for an entry of each): intake's per delivery and the gate's per
-- batch and check, with the run that wrote the row.
SELECT client_id, 'intake' AS kind, delivery_id, NULL AS batch_id, NULL AS check_name, manifest_etag, status,
       NULL::BOOLEAN AS passed, dagster_run_id
  FROM deliveries
 WHERE $client_id::VARCHAR IS NULL OR client_id = $client_id
UNION ALL
SELECT client_id, 'gate' AS kind, delivery_id, batch_id, check_name, NULL AS manifest_etag, NULL AS status, passed,
       dagster_run_id
  FROM gate_results
 WHERE $client_id::VARCHAR IS NULL OR client_id = $client_id
 ORDER BY client_id, kind, delivery_id, batch_id, check_name;
