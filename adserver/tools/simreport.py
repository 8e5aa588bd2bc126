"""What `adserver simulate` reports of its day: per flight utilization, overspend, delivery
over the cap, slot deviation Ω beside its counting-noise floor and when the budget ran out;
the summary against the targets; and the plot of planned vs actual spend."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def omega(actual: np.ndarray, planned: np.ndarray) -> float:
    """Slot deviation: RMS over hourly slots of actual minus planned, / mean planned slot."""
    mean = float(planned.mean())
    if mean <= 0:
        return math.nan
    return float(np.sqrt(np.mean((actual - planned) ** 2)) / mean)


def report(
    world: dict[str, Any], stats: dict[str, Any], settings: dict[str, Any]
) -> dict[str, Any]:
    from adserver.control import caps

    rows = []
    for f in world["flights"]:
        hourly = stats["spent"].get(f.id, np.zeros(24))
        spent = float(hourly.sum())
        cumulative = np.array(stats["plans"].get(f.id) or [0.0] * 24)
        planned = np.diff(np.concatenate([[0.0], cumulative]))
        day = stats.get("day_plans", {}).get(f.id) or []
        day_planned = np.diff(np.concatenate([[0.0], day])) if day else None
        # what counting alone costs: hourly spend arrives in events of about `event` each,
        # so even a perfect plan-follower deviates by about sqrt(planned x event) an hour
        event = 0.75 * (f.bid / 1000 if f.rate == "cpm" else f.bid)
        floor = (
            float(np.sqrt(np.mean(planned * event)) / planned.mean())
            if planned.mean() > 0
            else math.nan
        )
        rows.append(
            {
                # a budget of n events measures utilization to about 1/sqrt(n)
                "utilization_noise": round(1 / math.sqrt(max(f.budget / event, 1.0)), 4),
                "flight": f.id,
                "group": "/".join(f.group),
                "mode": f.mode,
                "rate": f.rate,
                "bid": f.bid,
                "supply": "under" if f.under else "over",
                "budget": float(f.budget),
                "spent": round(spent, 4),
                "over_cap": round(stats["over_cap"].get(f.id, 0.0), 6),
                "utilization": round(spent / f.budget, 4) if f.budget else None,
                "overspend": round(max(0.0, spent - f.budget) / f.budget, 4) if f.budget else 0.0,
                "omega": None if f.mode == "asap" else round(omega(hourly, planned), 4),
                "omega_noise_floor": None if f.mode == "asap" else round(floor, 4),
                # against the day's own plan (before re-bases and supply caps)
                "omega_day_plan": None
                if f.mode == "asap" or day_planned is None
                else round(omega(hourly, day_planned), 4),
                "exhausted_at_h": None if f.exhausted_at is None else round(f.exhausted_at, 2),
                "hourly_spend": [round(float(x), 6) for x in hourly],
                "hourly_plan": [round(float(x), 6) for x in planned],
                "min_throttle": round(min(f.throttles), 4) if f.throttles else 1.0,
                "final_throttle": round(f.throttles[-1], 4) if f.throttles else 1.0,
            }
        )
    over = [r for r in rows if r["supply"] == "over"]
    paced = [r for r in over if r["mode"] != "asap" and r["omega"] is not None]
    evens = [r for r in rows if r["mode"] == "even"]
    early = [r for r in evens if r["exhausted_at_h"] is not None and r["exhausted_at_h"] < 21.6]
    worst_over = float(max(r["overspend"] for r in rows))
    min_util = float(min(r["utilization"] for r in over)) if over else None
    median_omega = float(np.median([r["omega"] for r in paced])) if paced else None
    noise_floor = _median([r["omega_noise_floor"] for r in paced])
    # the flight with the least utilization: how precisely its budget measures it
    least = min(over, key=lambda r: r["utilization"]) if over else None
    util_noise = least["utilization_noise"] if least is not None else None
    omega_bar = max(0.05, noise_floor or 0.0)  # no controller beats counting noise
    by_rate = {
        rate: {
            "flights": len([r for r in paced if r["rate"] == rate]),
            "median_omega": _median([r["omega"] for r in paced if r["rate"] == rate]),
            "median_noise_floor": _median(
                [r["omega_noise_floor"] for r in paced if r["rate"] == rate]
            ),
            "median_omega_day_plan": _median(
                [
                    r["omega_day_plan"]
                    for r in paced
                    if r["rate"] == rate and r["omega_day_plan"] is not None
                ]
            ),
            "min_utilization": _min([r["utilization"] for r in over if r["rate"] == rate]),
        }
        for rate in ("cpm", "cpc")
    }
    summary = {
        "flights": len(rows),
        "under_supplied": len(rows) - len(over),
        "page_views": stats["page_views"],
        "wall_s": stats["wall_s"],
        "errors": stats["error_count"],
        "max_overspend": worst_over,
        "overspend_target": 0.01,
        "max_delivered_over_cap": float(max(r["over_cap"] / r["budget"] for r in rows)),
        "delivery_bound": f"{settings['workers']} workers x (the larger of {caps.ALLOWANCE_SHARE:.1%}"
        f" of the cap and one decision's cost, plus one decision's cost)",
        "min_utilization_where_supply_allows": min_util,
        "utilization_target": 0.98,
        "utilization_p10_where_supply_allows": float(
            np.percentile([r["utilization"] for r in over], 10)
        )
        if over
        else None,
        "median_omega_paced": median_omega,
        "omega_target": 0.05,
        "by_rate": by_rate,
        "median_noise_floor": noise_floor,
        "utilization_noise": util_noise,
        # at this size, counting alone moves the figure by more than the target allows
        "noise_limited": {
            "omega": bool(noise_floor is not None and noise_floor > 0.05),
            "utilization": bool(util_noise is not None and util_noise > 0.01),
        },
        "median_omega_day_plan": _median(
            [r["omega_day_plan"] for r in paced if r["omega_day_plan"] is not None]
        ),
        "even_exhausted_before_90pct": len(early),
        "met": {
            "overspend": bool(worst_over <= 0.01),
            "utilization": bool(min_util is not None and min_util >= 0.98),
            "omega": bool(median_omega is not None and median_omega <= omega_bar),
            "no_early_exhaustion": not early,
        },
    }
    return {"summary": summary, "flights": rows, "settings": settings}


def _median(xs: list[float]) -> float | None:
    return float(np.median(xs)) if xs else None


def _min(xs: list[float]) -> float | None:
    return float(min(xs)) if xs else None


def plot(stats: dict[str, Any], result: dict[str, Any], path: str) -> None:
    """Planned vs actual cumulative spend of a dozen flights, by mode and supply."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {r["flight"]: r for r in result["flights"]}
    chosen: list[int] = []
    for mode, supply, k in (
        ("even", "over", 4),
        ("front_loaded", "over", 2),
        ("custom", "over", 1),
        ("asap", "over", 1),
        ("even", "under", 2),
        ("front_loaded", "under", 1),
        ("custom", "under", 1),
    ):
        pool = [r for r in result["flights"] if r["mode"] == mode and r["supply"] == supply]
        by_rate = [[r["flight"] for r in pool if r["rate"] == rate] for rate in ("cpm", "cpc")]
        mixed = [fid for pair in zip(*by_rate) for fid in pair]  # CPM and CPC by turns
        chosen += (mixed + [fid for ids in by_rate for fid in ids if fid not in mixed])[:k]
    fig, axes = plt.subplots(3, 4, figsize=(16, 10), sharex=True)
    hours = np.arange(25)
    for ax, fid in zip(axes.flat, chosen):
        r = rows[fid]
        actual = np.concatenate([[0], np.cumsum(stats["spent"].get(fid, np.zeros(24)))])
        plan = np.concatenate([[0], stats["plans"].get(fid) or [0] * 24])
        ax.plot(hours, plan, "--", color="#888", label="plan")
        ax.plot(hours, actual, color="#1f6feb", label="actual")
        ax.axhline(r["budget"], color="#d1242f", lw=0.8, label="daily cap")
        omega_text = "" if r["omega"] is None else f", Ω {r['omega']:.1%}"
        ax.set_title(
            f"#{fid} {r['mode']}, {r['supply']}-supplied\nutil {r['utilization']:.1%}{omega_text}",
            fontsize=9,
        )
        ax.tick_params(labelsize=8)
    for ax in axes.flat[len(chosen) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("hour of the day (UTC)", fontsize=8)
    summary = result["summary"]
    days = int(result.get("settings", {}).get("days", 1))
    which = f"day {days} of {days}" if days > 1 else "day"
    fig.suptitle(
        f"Simulated {which}: {summary['flights']} flights, {summary['page_views']:,} page "
        f"views; max overspend {summary['max_overspend']:.2%}, median Ω "
        f"{(summary['median_omega_paced'] or 0):.1%}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
