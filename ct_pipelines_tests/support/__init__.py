"""Test-only helpers that must never ship in the ct_pipelines packages."""
