-- People counted by town and race/ethnicity, one row per town and category.
-- The source placeholder below is the standardized table without its PII columns.
-- Dataset YAML:
--   publish:
--     mode: sql
--     sql_file: counts_by_town_and_race.sql
--     dimensions:
--       - {name: town, totals: true}
--       - {name: race_ethnicity, totals: true}
--     suppression: {count_column: count, threshold: 5}
-- The pipeline then adds town totals, race/ethnicity totals and the state total (only over
-- dimensions marked totals: true; a date or snapshot dimension is written {name: ..., time: true}
-- and never totalled), and hides small counts and the complements that would reveal them.
-- The query runs confined: it can read only {{ source }} (and declared reference tables).
SELECT
    COALESCE(town, 'Not reported') AS town,
    COALESCE(race_ethnicity, 'Not reported') AS race_ethnicity,
    count(*) AS count
FROM {{ source }}
GROUP BY ALL
ORDER BY ALL;
