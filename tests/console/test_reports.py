"""The console's reports over HTTP: settings checked where they enter (each error at its
field, never a 500), the CSV export refuses what the page refuses, and the chart's library
is served by the control process itself."""

from __future__ import annotations

from typing import Any


def test_report_settings_are_checked_at_their_fields(console: Any) -> None:
    c = console("a")
    ok = c.get("/console/reports")
    assert ok.status_code == 200 and "No delivery in this period." in ok.text
    assert "(Europe/Berlin)" in ok.text  # dates in the network's time zone
    for query, field in (
        ("from=yesterday", "from"),
        ("to=2026-13-40", "to"),
        ("from=2026-01-10&to=2026-01-01", "to"),
        ("from=2026-01-01&to=2026-12-31", "to"),  # more than 92 days
        ("group=password", "group"),
        ("metric=__class__", "metric"),
        ("interval=minute", "interval"),
    ):
        r = c.get(f"/console/reports?{query}")
        if field in ("from", "to"):
            assert r.status_code == 400 and f'id="{field}-error"' in r.text, query
        else:
            assert r.status_code == 400, query
        assert c.get(f"/console/reports.csv?{query}").status_code == 400, query


def test_the_csv_names_its_currency_and_time_zone(console: Any) -> None:
    c = console("a")
    r = c.get("/console/reports.csv?group=flight")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    header = r.text.splitlines()[0].split(",")
    assert header[:3] == ["day", "flight_id", "flight_name"]
    assert header[-2:] == ["currency", "time_zone"]


def test_the_chart_library_is_served_here(console: Any) -> None:
    c = console()
    r = c.http.get("/console/assets/plotly.min.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert len(r.content) > 1_000_000 and "max-age" in r.headers["cache-control"]
