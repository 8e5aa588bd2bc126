"""Append-only segment logs: each worker writes its own; the control process reads them."""
