"""`python -m adserver`: the command line (adserver/cli.py)."""

from adserver.cli import main

raise SystemExit(main())
