"""Dagster component instances (``defs.yaml`` files) of ct-pipelines."""
