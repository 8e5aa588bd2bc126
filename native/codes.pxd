# The codes the native kernels and Python share, declared once here. The Python mirror is
# adserver/kernels/codes.py (tests/kernels/test_codes.py reads this file and checks the two
# are equal). A kernel cimports what it uses: `from codes cimport PASS, ...`.

cdef enum:
    # why a candidate was not chosen (explain and decision records)
    PASS = 0
    DUPLICATE = 1
    DATES = 2
    SITE_ZONE = 3
    FORCED = 4
    BLOCKED = 5
    SEGMENTS = 6
    GEO = 7
    DAYPART = 8
    KEYWORDS = 9
    CUSTOM = 10
    DEDUPED = 11
    FLOOR = 12
    OUTBID = 13
    LOST_LOTTERY = 14
    PAUSED = 15
    FREQUENCY = 16
    THROTTLED = 17
    NOT_RELEVANT = 18
    UNAVAILABLE = 19

cdef enum:
    # flight rate types (Kevel's RateType numbers are in adserver/wire/kevel.py)
    RATE_FLAT = 0
    RATE_CPM = 1
    RATE_CPC = 2
    RATE_CPA = 3

cdef enum:
    # keyword match types
    M_EXACT = 0
    M_PHRASE = 1
    M_BROAD = 2

cdef enum:
    # targeting expression instructions (postfix; each leaf pushes one boolean)
    OP_EXISTS = 0
    OP_EQ_STR = 1
    OP_EQ_NUM = 2
    OP_LT = 3
    OP_LE = 4
    OP_GT = 5
    OP_GE = 6
    OP_CONTAINS = 7
    OP_AND = 8
    OP_OR = 9
    OP_NOT = 10
