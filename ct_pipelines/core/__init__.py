"""Shared mechanisms below every stage: settings, SQL identifiers, check outcomes, JSON-safe values."""
