-- Quality of every publishable batch of one industry, with whether both blocking checks passed.
SELECT q.*, g.passed
  FROM qa_results AS q
  JOIN batch_gate_status AS g USING (batch_id)
 WHERE q.industry = $industry AND q.license = 'publishable'
 ORDER BY q.batch_id;
