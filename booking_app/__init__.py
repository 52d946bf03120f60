"""Self-hostable booking platform."""
__version__ = "0.1.0"
