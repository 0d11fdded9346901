-- Views over the catalog tables, created on every connection after the tables themselves.

-- The outcome of each blocking check's most recent run on each batch.
CREATE VIEW latest_gate_results AS
SELECT *
  FROM gate_results
QUALIFY row_number() OVER (PARTITION BY batch_id, check_name ORDER BY checked_at DESC) = 1;

-- Per batch: whether both blocking checks (qa_gate, qa_tables_valid) passed on its current data: the
-- export version its QA results were measured on, read against the batch's current tasks version. A
-- verdict on an older export, or on the tasks of an earlier cut of the batch, does not count. NULL:
-- never gated. What every later step (client deliveries, releases) consults.
CREATE VIEW batch_gate_status AS
SELECT b.batch_id,
       b.client_id,
       b.delivery_id,
       CASE WHEN count(g.check_name) = 0 THEN NULL
            ELSE coalesce(count(DISTINCT g.check_name) = 2
                          AND bool_and(g.passed
                                       AND g.export_etag = q.export_etag
                                       AND g.tasks_version IS NOT DISTINCT FROM q.tasks_version)
                          AND any_value(q.tasks_version) IS NOT DISTINCT FROM b.tasks_version,
                          false)
       END AS passed,
       any_value(q.export_etag) AS export_etag,
       max(g.checked_at) AS checked_at
  FROM batches AS b
  LEFT JOIN qa_results AS q USING (batch_id)
  LEFT JOIN latest_gate_results AS g USING (batch_id)
 GROUP BY b.batch_id, b.client_id, b.delivery_id, b.tasks_version;
