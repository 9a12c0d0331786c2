"""Race, ethnicity and language (REL) standardization: reference tables, label normalizer,
set-based DuckDB standardization, checks and the `rel` CLI group."""
