"""Data-quality gates: column rules (SQL on DuckDB, checked by pandera), Great Expectations suites, quarantine.

Import the stage from :mod:`ct_pipelines.validate.validate`; this package stays light so that reading
``quality.config`` (done by the catalog models) does not import pandas, pandera or GX.
"""
