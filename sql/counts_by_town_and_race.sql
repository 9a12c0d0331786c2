-- People counted by town and race/ethnicity, one row per town and category.
-- The source placeholder below is the standardized table without its PII columns.
-- Dataset YAML:
--   publish:
--     mode: sql
--     sql_file: counts_by_town_and_race.sql
--     dimensions: [town, race_ethnicity]
--     suppression: {count_column: count, threshold: 5}
-- The pipeline then adds town totals, race/ethnicity totals and the state total,
-- and hides small counts and the complements that would reveal them.
SELECT
    COALESCE(town, 'Not reported') AS town,
    COALESCE(race_ethnicity, 'Not reported') AS race_ethnicity,
    count(*) AS count
FROM {{ source }}
GROUP BY ALL
ORDER BY ALL;
