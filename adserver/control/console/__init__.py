"""The console: the web UI for advertisers and operations, served by the control process.
Users and sessions (`users.py`), the pages (`pages.py`, Jinja2 templates in `templates/`),
which read and write only through the management API's own routes and authorization, called
in-process with the signed-in user's scope (`pages.ApiCall`): no second path to the data."""
