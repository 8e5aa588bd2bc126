"""`adserver products import`: load a catalog file through the management API.

The file is JSON Lines (one product object per line, the fields of
`POST /v1/networks/{id}/products`) or CSV with a header row: `id`, `title`, `brand`,
`category` ("Home > Kitchen > Mugs"), `price`, `available` (true/false, 1/0, yes/no,
in_stock/out_of_stock), `image_url`, `url`, `vector` (numbers separated by spaces or
semicolons); any other column goes into the product's `data`. Empty cells are left out.

Rows travel in batches through the API (the control process stays the store's only writer);
a row the file or the API rejects is reported with its line number and the reason, and the
others are imported.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from tqdm import tqdm

from adserver.common.catalog_rows import csv_item


class CatalogFileError(Exception):
    """The import cannot go on (file unreadable, API refused the whole request)."""


def read_rows(path: str, fmt: str) -> Iterator[tuple[int, int, dict[str, Any] | None, str]]:
    """(line number, bytes read so far, product object or None, why not) per row."""
    with open(path, "rb") as raw:
        if fmt == "jsonl":
            for n, line in enumerate(raw, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError as e:
                    yield n, raw.tell(), None, f"not valid JSON: {e}"
                    continue
                if not isinstance(item, dict):
                    yield n, raw.tell(), None, "not a JSON object"
                    continue
                yield n, raw.tell(), item, ""
            return
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.DictReader(text)
        if not reader.fieldnames or "id" not in reader.fieldnames:
            raise CatalogFileError("the CSV header has no `id` column")
        for row in reader:
            try:
                yield reader.line_num, raw.tell(), csv_item(row), ""
            except ValueError as e:
                yield reader.line_num, raw.tell(), None, str(e)


class Summary:
    """What an import did: products sent, written, rejected (with their lines) and batches."""

    def __init__(self) -> None:
        self.rows = 0
        self.upserted = 0
        self.rejected: list[tuple[int, str | None, str]] = []  # (line, id, reason)

    def text(self, show: int = 20) -> str:
        out = [f"imported {self.upserted:,} of {self.rows:,} rows; rejected {len(self.rejected):,}"]
        if self.rejected:
            reasons = collections.Counter(r[2] for r in self.rejected)
            out.append("rejected rows by reason:")
            out += [f"  {count:>8,}  {reason}" for reason, count in reasons.most_common(10)]
            out.append(f"first {min(show, len(self.rejected))}:")
            out += [
                f"  line {line}: {pid or '(no id)'}: {reason}"
                for line, pid, reason in self.rejected[:show]
            ]
        return "\n".join(out)


def _post(url: str, key: str, body: bytes) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"X-Api-Key": key, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        try:
            detail = json.load(e)["error"]
            message = detail["message"] + "".join(
                f"; {f['field']}: {f['message']}" for f in detail.get("fields", [])
            )
        except (ValueError, KeyError, TypeError):
            message = str(e)
        raise CatalogFileError(f"the API refused a batch ({e.code}): {message}") from None
    except OSError as e:
        raise CatalogFileError(f"cannot reach the management API at {url}: {e}") from None


def run(
    path: str,
    network_id: int,
    api_url: str,
    key: str,
    fmt: str | None = None,
    batch_rows: int = 500,
    batch_bytes: int = 200_000,
    progress: bool = True,
) -> Summary:
    """Import `path` into a network's catalog; returns what happened row by row."""
    if fmt is None:
        fmt = "csv" if path.lower().endswith(".csv") else "jsonl"
    url = f"{api_url.rstrip('/')}/v1/networks/{network_id}/products"
    summary = Summary()
    batch: list[tuple[int, dict[str, Any]]] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if not batch:
            return
        body = json.dumps({"products": [item for _, item in batch]}).encode()
        result = _post(url, key, body)
        summary.upserted += result["upserted"]
        for r in result["rejected"]:
            line, item = batch[r["index"]]
            reason = "; ".join(f"{f['field']}: {f['message']}" for f in r["fields"])
            summary.rejected.append((line, r["id"], reason))
        batch.clear()
        size = 0

    try:
        total = os.path.getsize(path)
    except OSError as e:
        raise CatalogFileError(f"cannot read {path}: {e}") from None
    bar = tqdm(total=total, unit="B", unit_scale=True, desc="products", disable=not progress)
    done = 0
    for line, offset, item, why in read_rows(path, fmt):
        summary.rows += 1
        bar.update(offset - done)
        done = offset
        if item is None:
            summary.rejected.append((line, None, why))
            continue
        batch.append((line, item))
        size += len(json.dumps(item))
        if len(batch) >= batch_rows or size >= batch_bytes:
            flush()
    flush()
    bar.update(total - done)
    bar.close()
    summary.rejected.sort()
    return summary
