"""The codes the native kernels and Python share, as Python sees them. Declared once for the
kernels in native/codes.pxd; tests/kernels/test_codes.py checks the two are equal. Every
Python module that names a code imports it from here."""

from __future__ import annotations

# why a candidate was not chosen (explain and decision records)
PASS, DUPLICATE, DATES, SITE_ZONE, FORCED, BLOCKED = 0, 1, 2, 3, 4, 5
SEGMENTS, GEO, DAYPART, KEYWORDS, CUSTOM, DEDUPED = 6, 7, 8, 9, 10, 11
FLOOR, OUTBID, LOST_LOTTERY, PAUSED, FREQUENCY, THROTTLED = 12, 13, 14, 15, 16, 17
NOT_RELEVANT, UNAVAILABLE = 18, 19
KEPT = PASS  # the relevance gate's name for a row it keeps

# flight rate types (Kevel's RateType numbers are in adserver/wire/kevel.py)
RATE_FLAT, RATE_CPM, RATE_CPC, RATE_CPA = 0, 1, 2, 3

# keyword match types
M_EXACT, M_PHRASE, M_BROAD = 0, 1, 2

# targeting expression instructions (postfix; each leaf pushes one boolean)
OP_EXISTS, OP_EQ_STR, OP_EQ_NUM, OP_LT, OP_LE, OP_GT, OP_GE = 0, 1, 2, 3, 4, 5, 6
OP_CONTAINS, OP_AND, OP_OR, OP_NOT = 7, 8, 9, 10
