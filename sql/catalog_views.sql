-- Views over the catalog tables, created on every connection after the tables themselves.

-- The outcome of each blocking check's most recent run on each batch.
CREATE VIEW latest_gate_results AS
SELECT *
  FROM gate_results
QUALIFY row_number() OVER (PARTITION BY batch_id, check_name ORDER BY checked_at DESC) = 1;

-- Per batch: whether its latest runs of both blocking checks (qa_gate, qa_tables_valid) passed:
-- what every later step (client deliveries, releases) consults.
CREATE VIEW batch_gate_status AS
SELECT batch_id,
       any_value(client_id) AS client_id,
       any_value(delivery_id) AS delivery_id,
       bool_and(passed) AND count(DISTINCT check_name) = 2 AS passed
  FROM latest_gate_results
 GROUP BY batch_id;
