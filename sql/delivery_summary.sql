-- Per delivery: its status, how many items it listed and how many were accepted, rejections by code.
SELECT d.client_id,
       d.delivery_id,
       coalesce(d.modality, '') AS modality,
       d.status,
       d.items_listed,
       d.items_accepted,
       coalesce(
           (SELECT string_agg(r.code || '=' || r.n, ', ' ORDER BY r.code)
              FROM (SELECT code, count(*) AS n
                      FROM rejections
                     WHERE client_id = d.client_id AND delivery_id = d.delivery_id
                     GROUP BY code) AS r),
           '') AS rejected_by_code
  FROM deliveries AS d
 ORDER BY d.client_id, d.delivery_id;
