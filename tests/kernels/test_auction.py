"""The auction, lottery and priority waterfall (Cython, native/_auction.pyx) against their
plain-Python twins, and the pricing rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adserver import _auction
from adserver.kernels import auction as rules
from adserver.kernels import auction_ref as twin

RATES = [rules.RATE_FLAT, rules.RATE_CPM, rules.RATE_CPC, rules.RATE_CPA]


class kernel:  # the Cython kernel with the twin's signatures, as a module would
    """`_auction.Waterfall` called as the twin's `waterfall`, `auction` (a waterfall of one
    auction priority) and `lottery` (of one lottery priority)."""

    from_columns = staticmethod(_auction.from_columns)

    @staticmethod
    def waterfall(
        rows,
        ad_flight,
        fl_priority,
        fl_rate,
        fl_price,
        prior_ctr,
        prior_cvr,
        ad_weight,
        prio_order,
        prio_selection,
        prio_second,
        prio_floor_cpm,
        prio_floor_cpc,
        floor_cpm,
        floor_cpc,
        uniforms,
        k,
        detail,
        bids,
        boost,
        ctr,
        cvr,
    ):
        columns = {
            "ad_flight": ad_flight,
            "fl_priority": fl_priority,
            "fl_rate": fl_rate,
            "fl_price": fl_price,
            "ad_prior_ctr": prior_ctr,
            "ad_prior_cvr": prior_cvr,
            "ad_weight": ad_weight,
        }
        return _auction.from_columns(
            columns,
            prio_order,
            prio_selection,
            prio_second,
            np.asarray(prio_floor_cpm, dtype=np.float64),
            np.asarray(prio_floor_cpc, dtype=np.float64),
        ).run(rows, floor_cpm, floor_cpc, uniforms, k, detail, bids, boost, ctr, cvr)

    @staticmethod
    def auction(
        rows,
        ad_flight,
        fl_rate,
        fl_price,
        prior_ctr,
        prior_cvr,
        floor_cpm,
        floor_cpc,
        tiebreak,
        k,
        second_price,
        bids,
        boost,
        ctr,
        cvr,
    ):
        n = len(rows)
        detail = np.zeros((3, n))
        won, min_ecpm = kernel.waterfall(
            rows,
            ad_flight,
            np.zeros(len(fl_rate), dtype=np.int32),
            fl_rate,
            fl_price,
            prior_ctr,
            prior_cvr,
            np.zeros(len(ad_flight), dtype=np.int32),
            np.zeros(1, dtype=np.int32),
            np.ones(1, dtype=np.int8),
            np.array([1 if second_price else 0], dtype=np.int8),
            np.zeros(1),
            np.zeros(1),
            floor_cpm,
            floor_cpc,
            np.concatenate([np.asarray(tiebreak, dtype=np.float64), np.zeros(k)]),
            k,
            detail,
            bids,
            boost,
            ctr,
            cvr,
        )
        # with no candidate the waterfall runs no auction; an auction's answer is its floor
        return (
            won[:, 1].astype(np.int64),
            won[:, 4].copy(),
            detail[1].copy(),
            detail[0].astype(np.int8),
            min_ecpm if n else floor_cpm,
        )

    @staticmethod
    def lottery(rows, ad_weight, uniforms, k):
        n, n_ads = len(rows), len(ad_weight)
        detail = np.zeros((3, n))
        none = np.zeros(0)
        won, _ = kernel.waterfall(
            rows,
            np.zeros(n_ads, dtype=np.int32),
            np.zeros(1, dtype=np.int32),
            np.ones(1, dtype=np.int8),
            np.zeros(1, dtype=np.int64),
            np.zeros(n_ads),
            np.zeros(n_ads),
            ad_weight,
            np.zeros(1, dtype=np.int32),
            np.zeros(1, dtype=np.int8),
            np.zeros(1, dtype=np.int8),
            np.zeros(1),
            np.zeros(1),
            0.0,
            0.0,
            np.concatenate(
                [
                    np.zeros(n),
                    np.asarray(uniforms, dtype=np.float64)[:k],
                    np.zeros(max(0, k - len(uniforms))),
                ]
            ),
            k,
            detail,
            none,
            none,
            none,
            none,
        )
        return won[:, 1].astype(np.int64), detail[0].astype(np.int8)


@st.composite
def markets(draw: st.DrawFn) -> tuple:
    n = draw(st.integers(0, 30))
    prices = draw(
        st.lists(
            st.sampled_from([0, 100_000, 500_000, 1_000_000, 2_500_000, 10_000_000])
            | st.integers(0, 20_000_000),
            min_size=n,
            max_size=n,
        )
    )
    rates = draw(st.lists(st.sampled_from(RATES), min_size=n, max_size=n))
    ctr = draw(st.lists(st.sampled_from([0.0, 0.001, 0.01, 0.05]), min_size=n, max_size=n))
    tiebreak = draw(
        st.lists(st.sampled_from([0.1, 0.5, 0.9]) | st.floats(0, 1), min_size=n, max_size=n)
    )
    perm = draw(st.permutations(range(n)))
    rows = np.array(perm, dtype=np.int32)
    return (
        rows,
        np.arange(n, dtype=np.int32),
        np.array(rates, dtype=np.int8),
        np.array(prices, dtype=np.int64),
        np.array(ctr, dtype=np.float64),
        np.array(ctr, dtype=np.float64) / 10,
        draw(st.sampled_from([0.0, 0.5, 2.0])),
        draw(st.sampled_from([0.0, 0.2])),
        np.array(tiebreak, dtype=np.float64),
        draw(st.integers(1, 5)),
        draw(st.booleans()),
        *draw(extras(n)),
    )


@st.composite
def extras(draw: st.DrawFn, n: int) -> tuple[np.ndarray, ...]:
    """Per-candidate bids (-1: the flight's price), quality boosts and model pCTR and pCVR,
    or none."""
    none = np.zeros(0)
    bids = (
        np.array(
            draw(
                st.lists(
                    st.sampled_from([-1.0, 0.0, 0.3, 2.5]) | st.floats(0, 20),
                    min_size=n,
                    max_size=n,
                )
            )
        )
        if draw(st.booleans())
        else none
    )
    boost = (
        np.array(
            draw(
                st.lists(
                    st.sampled_from([0.0, 0.25, 1.0]) | st.floats(0, 1), min_size=n, max_size=n
                )
            )
        )
        if draw(st.booleans())
        else none
    )
    ctr, cvr = (
        np.array(
            draw(
                st.lists(
                    st.sampled_from([0.0, 0.001, 0.05]) | st.floats(0, 1), min_size=n, max_size=n
                )
            )
        )
        if draw(st.booleans())
        else none
        for _ in range(2)
    )
    return bids, boost, ctr, cvr


@settings(max_examples=500, deadline=None)
@given(markets())
def test_auction_matches_twin(market: tuple) -> None:
    got = kernel.auction(*market)
    want = twin.auction(*market)
    for g, w in zip(got[:4], want[:4]):
        assert np.asarray(g).tolist() == np.asarray(w).tolist()
    assert float(got[4]) == float(want[4])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 500), max_size=20), st.integers(1, 5), st.data())
def test_lottery_matches_twin(weights: list[int], k: int, data: st.DataObject) -> None:
    n = len(weights)
    rows = np.arange(n, dtype=np.int32)
    w = np.array(weights, dtype=np.int32)
    u = np.array(data.draw(st.lists(st.floats(0, 0.999999), min_size=k, max_size=k)))
    got, got_r = kernel.lottery(rows, w, u, k)
    want, want_r = twin.lottery(rows, w, u, k)
    assert got.tolist() == want.tolist() and got_r.tolist() == want_r.tolist()
    assert len(set(got.tolist())) == len(got)  # never the same ad twice
    assert all(weights[i] > 0 for i in got.tolist())


def run(
    prices: list[float],
    rates: list[int],
    k: int = 1,
    floor_cpm: float = 0.0,
    floor_cpc: float = 0.0,
    ctr: float = 0.01,
    second: bool = True,
    bids: list[float] | None = None,
    boost: list[float] | None = None,
) -> tuple:
    n = len(prices)
    return kernel.auction(
        np.arange(n, dtype=np.int32),
        np.arange(n, dtype=np.int32),
        np.array(rates, dtype=np.int8),
        np.array([int(p * 1e6) for p in prices]),
        np.full(n, ctr),
        np.full(n, ctr / 10),
        floor_cpm,
        floor_cpc,
        np.linspace(0.9, 0.1, n) if n else np.zeros(0),
        k,
        second,
        np.array(bids if bids is not None else [], dtype=np.float64),
        np.array(boost if boost is not None else [], dtype=np.float64),
        np.zeros(0),
        np.zeros(0),
    )


def test_second_price_is_next_ecpm_plus_a_cent() -> None:
    winners, clear, ecpm, reasons, min_ecpm = run([5.0, 3.0, 1.0], [1, 1, 1])
    assert winners.tolist() == [0] and clear.tolist() == pytest.approx([3.01])
    assert reasons.tolist() == [rules.PASS, rules.OUTBID, rules.OUTBID]
    assert min_ecpm == pytest.approx(5.01)


def test_cpc_against_cpm_ranks_by_ecpm_and_prices_in_own_units() -> None:
    # CPC 0.40 at pCTR 1 % is an eCPM of 4.00; it beats a 3.00 CPM and pays 3.00 / 10 + 0.01
    winners, clear, ecpm, _, _ = run([0.40, 3.0], [rules.RATE_CPC, rules.RATE_CPM])
    assert winners.tolist() == [0] and ecpm.tolist() == pytest.approx([4.0, 3.0])
    assert clear.tolist() == pytest.approx([0.31])


def test_alone_pays_the_floor_and_floors_exclude() -> None:
    winners, clear, _, reasons, min_ecpm = run([5.0, 0.4], [1, 1], floor_cpm=0.5)
    assert winners.tolist() == [0] and clear.tolist() == pytest.approx([0.5])
    assert reasons.tolist()[1] == rules.FLOOR and min_ecpm == pytest.approx(5.01)
    winners, clear, _, reasons, _ = run([0.15], [rules.RATE_CPC], floor_cpc=0.2)
    assert winners.tolist() == [] and reasons.tolist() == [rules.FLOOR]


def test_gsp_fills_slots_in_rank_order() -> None:
    winners, clear, _, _, min_ecpm = run([1.0, 4.0, 3.0, 2.0], [1, 1, 1, 1], k=3)
    assert winners.tolist() == [1, 2, 3]
    assert clear.tolist() == pytest.approx([3.01, 2.01, 1.01])
    assert min_ecpm == pytest.approx(2.01)


def test_price_never_above_bid_and_first_price_without_second_pricing() -> None:
    _, clear, _, _, _ = run([3.0, 3.0], [1, 1])
    assert clear.tolist() == pytest.approx([3.0])
    _, clear, _, _, _ = run([5.0, 1.0], [1, 1], second=False)
    assert clear.tolist() == pytest.approx([5.0])


def test_relevance_boost_ranks_and_prices_gsp() -> None:
    # CPC 1.00 at relevance 0.5 (eCPM 5) loses to CPC 0.80 at relevance 1 (eCPM 8); the
    # winner pays the least bid that keeps its rank: 5 / (10 x 1) + 0.01
    winners, clear, ecpm, _, _ = run([1.0, 0.8], [rules.RATE_CPC] * 2, boost=[0.5, 1.0])
    assert winners.tolist() == [1] and ecpm.tolist() == pytest.approx([5.0, 8.0])
    assert clear.tolist() == pytest.approx([0.51])
    # a keyword bid replaces the flight's price; -1 keeps it
    winners, clear, ecpm, _, _ = run([1.0, 0.8], [rules.RATE_CPC] * 2, bids=[2.0, -1.0])
    assert winners.tolist() == [0] and ecpm.tolist() == pytest.approx([20.0, 8.0])
    assert clear.tolist() == pytest.approx([0.81])


@st.composite
def waterfalls(draw: st.DrawFn) -> tuple:
    n_prio = draw(st.integers(1, 4))
    n = draw(st.integers(0, 25))
    prio_of_flight = np.array(
        draw(st.lists(st.integers(0, n_prio - 1), min_size=n, max_size=n)), dtype=np.int32
    )
    tiers = draw(st.lists(st.integers(1, 3), min_size=n_prio, max_size=n_prio))
    order = np.array(sorted(range(n_prio), key=lambda p: (tiers[p], p)), dtype=np.int32)
    rates = np.array(draw(st.lists(st.sampled_from(RATES), min_size=n, max_size=n)), np.int8)
    prices = np.array(
        draw(st.lists(st.integers(0, 10_000_000), min_size=n, max_size=n)), dtype=np.int64
    )
    weights = np.array(draw(st.lists(st.integers(0, 300), min_size=n, max_size=n)), np.int32)
    k = draw(st.integers(1, 5))
    rows = np.array(draw(st.permutations(range(n))), dtype=np.int32)
    return (
        rows,
        np.arange(n, dtype=np.int32),
        prio_of_flight,
        rates,
        prices,
        np.full(n, 0.01),
        np.full(n, 0.001),
        weights,
        order,
        np.array(
            draw(st.lists(st.sampled_from([0, 1]), min_size=n_prio, max_size=n_prio)), np.int8
        ),
        np.array(
            draw(st.lists(st.sampled_from([0, 1]), min_size=n_prio, max_size=n_prio)), np.int8
        ),
        np.array(
            draw(st.lists(st.sampled_from([0.0, 0.5, 2.0]), min_size=n_prio, max_size=n_prio))
        ),
        np.array(draw(st.lists(st.sampled_from([0.0, 0.2]), min_size=n_prio, max_size=n_prio))),
        draw(st.sampled_from([0.0, 1.0])),
        draw(st.sampled_from([0.0, 0.1])),
        np.array(
            draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
            + draw(st.lists(st.floats(0, 0.999), min_size=k, max_size=k))
        ),
        k,
        draw(extras(n)),
    )


@settings(max_examples=400, deadline=None)
@given(waterfalls(), st.booleans())
def test_waterfall_matches_twin(case: tuple, explain: bool) -> None:
    n = case[0].shape[0]
    got_detail, want_detail = np.zeros((3, n if explain else 0)), np.zeros((3, n if explain else 0))
    *args, extra = case
    got, got_min = kernel.waterfall(*args, got_detail, *extra)
    want, want_min = twin.waterfall(*args, want_detail, *extra)
    assert got.tolist() == want.tolist() and float(got_min) == float(want_min)
    assert got_detail.tolist() == want_detail.tolist()
    k = case[-2]
    positions = got[:, rules.W_POS].astype(int).tolist()
    assert len(got) <= k and len(set(positions)) == len(positions)
    assert got[:, rules.W_ROW].tolist() == case[0][positions].tolist()


def test_waterfall_checks_its_arrays() -> None:
    """A wrong dtype, too few uniforms, a detail array of another shape or priority arrays
    of different lengths raise ValueError naming the argument; strided rows are read as
    they are."""
    columns = {
        "ad_flight": np.arange(4, dtype=np.int32),
        "fl_priority": np.zeros(4, np.int32),
        "fl_rate": np.ones(4, dtype=np.int8),
        "fl_price": np.array([1, 4, 2, 3]) * 1_000_000,
    }
    prios = (
        np.zeros(1, dtype=np.int32),
        np.ones(1, dtype=np.int8),
        np.ones(1, dtype=np.int8),
        np.zeros(1),
        np.zeros(1),
    )
    waterfall = kernel.from_columns(columns, *prios)
    none = np.zeros(0)

    def run(rows=np.arange(4, dtype=np.int32), uniforms=np.zeros(6), detail=np.zeros((3, 0))):
        return waterfall.run(rows, 0.0, 0.0, uniforms, 2, detail, none, none, none, none)

    won, _ = run()
    assert won[:, rules.W_ROW].tolist() == [1, 3]  # the two highest CPM bids
    won, _ = run(rows=np.array([2, 1, 0, 3, 3, 0], dtype=np.int32)[::2])  # rows 2, 0, 3
    assert won[:, rules.W_ROW].tolist() == [3, 2] and won[:, rules.W_POS].tolist() == [2, 0]
    with pytest.raises(ValueError, match="int32"):
        run(rows=np.arange(4))
    with pytest.raises(ValueError, match="uniforms: 4 \\+ 2"):
        run(uniforms=np.zeros(5))
    with pytest.raises(ValueError, match="detail"):
        run(detail=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="detail"):
        run(detail=np.zeros((4, 3)).T)  # (3, 4) but not C-contiguous
    with pytest.raises(ValueError, match="priorities"):
        kernel.from_columns(columns, prios[0], np.ones(2, dtype=np.int8), *prios[2:])
