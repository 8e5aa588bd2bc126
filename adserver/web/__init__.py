"""What both planes' HTTP servers run on: uvicorn with httptools on a socket bound up front,
the lane that answers the decision route ahead of Starlette (`runtime.py`), the per-address
token buckets the protocol checks (`ratelimit.py`) and the `/docs` API explorer
(`explorer.py`)."""
