"""adserver: a self-hosted retail media and personalization decision server."""

__version__ = "0.1.0"
