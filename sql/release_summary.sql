-- Per industry: the releases cut so far, the newest, and how many items it holds.
SELECT industry,
       count(DISTINCT version) AS releases,
       max(version) AS newest,
       count(*) FILTER (WHERE version = (SELECT max(version) FROM release_items AS r WHERE r.industry = i.industry))
           AS items_in_newest,
       count(DISTINCT client_id) FILTER (WHERE version = (SELECT max(version) FROM release_items AS r
                                                          WHERE r.industry = i.industry)) AS clients
  FROM release_items AS i
 GROUP BY industry
 ORDER BY industry;
