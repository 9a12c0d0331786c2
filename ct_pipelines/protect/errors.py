"""The privacy stage's configuration error, shared by the table builder and the SQL sandbox."""

from __future__ import annotations


class PublishConfigError(ValueError):
    """The publish block or its SQL file cannot produce a table; the message says what to fix."""
