-- Per industry: deliveries and items taken in, and what was dropped, by reason.
WITH rejected AS (
    SELECT d.industry, r.code, count(*) AS n
      FROM rejections AS r
      JOIN deliveries AS d USING (client_id, delivery_id)
     GROUP BY d.industry, r.code
)
SELECT coalesce(d.industry, '(unreadable manifest)') AS industry,
       count(*) AS deliveries,
       count(*) FILTER (WHERE d.status = 'rejected') AS deliveries_rejected,
       sum(d.items_listed)::BIGINT AS items_in,
       sum(d.items_accepted)::BIGINT AS items_accepted,
       coalesce((SELECT string_agg(code || '=' || n, ', ' ORDER BY code)
                   FROM rejected
                  WHERE rejected.industry IS NOT DISTINCT FROM d.industry), '') AS dropped_by_reason
  FROM deliveries AS d
 GROUP BY d.industry
 ORDER BY industry;
