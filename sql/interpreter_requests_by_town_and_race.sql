-- Interpreter service requests by town and race/ethnicity group (CT DPH rule: Hispanic of any race,
-- non-Hispanic single race, non-Hispanic two or more races), from the standardized rows.
-- The pipeline adds town totals, group totals and the state total (the YAML marks both dimensions
-- totals: true), then suppresses counts of 1-5
-- and the complementary cells that would let someone work them out.
SELECT
    town,
    rel_reporting_group AS race_ethnicity_group,
    count(*) AS requests
FROM {{ source }}
GROUP BY ALL
ORDER BY ALL
