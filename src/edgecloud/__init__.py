"""edgecloud: hybrid edge-to-cloud AI framework."""

__version__ = "0.1.0"
