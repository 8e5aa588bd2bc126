"""External wire formats, one module each: Kevel Decision API v2 (more to come)."""
