"""A catalog file's rows as product objects, for `adserver products import` and the
console's import alike: JSON Lines (one object per line) or CSV with a header row (`id`,
`title`, `brand`, `category`, `price`, `available` as true/false, 1/0, yes/no or
in_stock/out_of_stock, `image_url`, `url`, `vector` as numbers separated by spaces or
semicolons; any other column goes into the product's `data`; empty cells are left out).
The API checks each product; this only reads the file's text."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

KNOWN = ("id", "title", "brand", "category", "price", "available", "image_url", "url", "vector")
TRUE = {"true", "1", "yes", "y", "in_stock", "instock", "available"}
FALSE = {"false", "0", "no", "n", "out_of_stock", "outofstock", "unavailable"}


def csv_item(row: dict[str, str]) -> dict[str, Any]:
    """A product object from a CSV row (values stay strings where the API converts them)."""
    item: dict[str, Any] = {}
    data = {}
    for key, value in row.items():
        if key is None or value is None or value.strip() == "":
            continue
        value = value.strip()
        if key == "available":
            low = value.lower()
            if low not in TRUE | FALSE:
                raise ValueError(f"available: {value!r} is not true or false")
            item[key] = low in TRUE
        elif key == "vector":
            try:
                item[key] = [float(x) for x in value.replace(";", " ").split()]
            except ValueError:
                raise ValueError("vector: not a list of numbers") from None
        elif key in KNOWN:
            item[key] = value
        else:
            data[key] = value
    if data:
        item["data"] = data
    return item


def parse_lines(
    fmt: str, header: str, lines: list[str], first_line: int
) -> list[tuple[int, dict[str, Any] | None, str]]:
    """(line number, product object or None, why not) for each non-empty row of a chunk of
    a file: `lines` are whole rows starting at line `first_line`; a CSV chunk is read under
    the file's `header` row."""
    out: list[tuple[int, dict[str, Any] | None, str]] = []
    if fmt == "jsonl":
        for n, line in enumerate(lines, first_line):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as e:
                out.append((n, None, f"not valid JSON: {e}"))
                continue
            if isinstance(item, dict):
                out.append((n, item, ""))
            else:
                out.append((n, None, "not a JSON object"))
        return out
    reader = csv.DictReader(io.StringIO(header + "\n" + "\n".join(lines), newline=""))
    if not reader.fieldnames or "id" not in reader.fieldnames:
        return [(first_line, None, "the CSV header has no `id` column")]
    for row in reader:
        n = first_line + reader.line_num - 2
        try:
            out.append((n, csv_item(row), ""))
        except ValueError as e:
            out.append((n, None, str(e)))
    return out
