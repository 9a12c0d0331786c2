"""ct-pipelines: publish state agency data to an open data portal, fresh, documented, standardized and safe."""

__version__ = "0.1.0"
