"""What grows on disk is bounded: aggregated event segments past the retention go; those not
yet read to their end, and recent ones, stay."""

from __future__ import annotations

import os
from pathlib import Path

from adserver.formats import segment

DAY = 86400.0


def test_aggregated_segments_past_the_retention_are_deleted(tmp_path: Path) -> None:
    root = tmp_path / "events"
    d = root / "w0"
    d.mkdir(parents=True)
    now = 1_900_000_000.0
    names = {}
    for stream in ("decisions", "events"):
        for n in range(4):
            p = d / f"{stream}-{n:012d}.seg"
            p.write_bytes(b"x" * 10)
            os.utime(p, (now - (10 - n) * DAY, now - (10 - n) * DAY))  # 10, 9, 8, 7 days old
            names[(stream, n)] = p
    # decisions read into segment 2 (0 and 1 done); events still in segment 0
    offsets = {
        ("w0", "decisions"): (f"decisions-{2:012d}.seg", 4),
        ("w0", "events"): (f"events-{0:012d}.seg", 3),
    }
    gone = segment.prune(str(root), offsets, 9.5 * DAY, now)
    assert gone == [str(names[("decisions", 0)])]  # 10 days old and read; 1 is 9 days old
    gone = segment.prune(str(root), offsets, 5 * DAY, now)
    assert gone == [str(names[("decisions", 1)])]  # 2 and 3 are not read to their end
    assert all(p.exists() for (s, _), p in names.items() if s == "events")
    assert segment.prune(str(root), {}, 0, now) == []  # a stream never read: nothing goes
    assert segment.prune(str(tmp_path / "none"), offsets, 0, now) == []
