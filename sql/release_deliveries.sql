-- Deliveries of one industry that may enter a public release: publishable, taken in whole (every
-- intake step of that manifest version finished), and every batch of them passed both blocking
-- checks in its latest run.
SELECT d.client_id, d.delivery_id, d.modality, d.license, d.manifest_etag, d.manifest_sha256, d.dagster_run_id,
       d.ingested_at
  FROM deliveries AS d
  JOIN (SELECT b.client_id, b.delivery_id
          FROM batches AS b
          LEFT JOIN batch_gate_status AS g USING (batch_id)
         GROUP BY b.client_id, b.delivery_id
        HAVING bool_and(coalesce(g.passed, false))) AS gated USING (client_id, delivery_id)
 WHERE d.industry = $industry AND d.license = 'publishable' AND d.status <> 'rejected'
   AND NOT coalesce(d.in_progress, false)
 ORDER BY d.client_id, d.delivery_id;
