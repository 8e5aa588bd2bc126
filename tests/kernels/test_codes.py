"""The codes are declared once for the kernels (native/codes.pxd) and mirrored for Python
(adserver/kernels/codes.py): every name has the same value in both, and the compiled
modules that export codes agree."""

from __future__ import annotations

import re
from pathlib import Path

from adserver import _sponsored
from adserver.kernels import codes
from adserver.snapshot import format as f

PXD = Path(__file__).resolve().parents[2] / "native" / "codes.pxd"


def declared() -> dict[str, int]:
    return {
        m[1]: int(m[2])
        for m in re.finditer(r"^\s+([A-Z_]+) = (\d+)\s*$", PXD.read_text(), re.MULTILINE)
    }


def test_the_pxd_and_the_python_mirror_agree() -> None:
    native = declared()
    assert len(native) == 38  # 20 reasons, 4 rates, 3 match types, 11 instructions
    python = {k: v for k, v in vars(codes).items() if k.isupper() and k != "KEPT"}
    assert native == python


def test_compiled_modules_and_python_modules_use_the_same_codes() -> None:
    assert (
        _sponsored.KEPT,
        _sponsored.DEDUPED,
        _sponsored.NOT_RELEVANT,
        _sponsored.UNAVAILABLE,
    ) == (codes.KEPT, codes.DEDUPED, codes.NOT_RELEVANT, codes.UNAVAILABLE)
    assert set(f.REASONS) == {
        v
        for k, v in vars(codes).items()
        if k
        in (
            "PASS DUPLICATE DATES SITE_ZONE FORCED BLOCKED SEGMENTS GEO DAYPART KEYWORDS CUSTOM"
            " DEDUPED FLOOR OUTBID LOST_LOTTERY PAUSED FREQUENCY THROTTLED NOT_RELEVANT"
            " UNAVAILABLE"
        ).split()
    }
    assert f.MATCH == {"exact": codes.M_EXACT, "phrase": codes.M_PHRASE, "broad": codes.M_BROAD}
