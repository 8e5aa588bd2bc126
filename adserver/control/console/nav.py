"""What the console's menu offers each role: advertisers their demand, admins and read-only
users the inventory too, admins the review queue."""

from __future__ import annotations

from adserver.control.schema import SPECS

DEMAND = ("campaigns", "flights", "ads", "creatives")
INVENTORY = ("networks", "sites", "zones", "ad_types", "channels", "priorities", "advertisers")
TITLES = {name: spec.name.replace("_", " ").capitalize() for name, spec in SPECS.items()}


def menu(role: str) -> list[tuple[str, str]]:
    """(title, path) of the pages a role's menu shows."""
    kinds = DEMAND if role == "advertiser" else DEMAND + INVENTORY
    extra = (
        [("Review", "/console/review"), ("Personalization", "/console/personalization")]
        if role == "admin"
        else []
    )
    if role != "advertiser":
        extra += [
            ("Health", "/console/health"),
            ("Catalog", "/console/catalog"),
            ("Models", "/console/models"),
            ("Keys", "/console/keys"),
            ("Audit", "/console/audit"),
        ]
    return [
        ("Reports", "/console/reports"),
        ("Preview", "/console/preview"),
        *extra,
        *((TITLES[k], f"/console/{k}") for k in kinds),
    ]


def menu_kinds(role: str) -> tuple[str, ...]:
    """The entity kinds whose pages a role may open."""
    return DEMAND if role == "advertiser" else DEMAND + INVENTORY
