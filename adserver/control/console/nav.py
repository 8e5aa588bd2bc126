"""What the console's menu offers each role: advertisers their demand, admins and read-only
users the inventory too, admins the review queue."""

from __future__ import annotations

from adserver.control.schema import SPECS

DEMAND = ("campaigns", "flights", "ads", "creatives")
INVENTORY = ("networks", "sites", "zones", "ad_types", "channels", "priorities", "advertisers")
TITLES = {name: spec.name.replace("_", " ").capitalize() for name, spec in SPECS.items()}


def menu(role: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The menu a role sees: (group, [(title, path)]) in order."""
    demand = [(TITLES[k], f"/console/{k}") for k in DEMAND]
    groups = [
        ("Delivery", [("Reports", "/console/reports"), ("Preview", "/console/preview"), *demand])
    ]
    if role == "advertiser":
        return groups
    ops = [
        ("Health", "/console/health"),
        ("Catalog", "/console/catalog"),
        ("Models", "/console/models"),
        ("Keys", "/console/keys"),
        ("Audit", "/console/audit"),
    ]
    if role == "admin":
        ops = [("Review", "/console/review"), ("Personalization", "/console/personalization"), *ops]
    groups.append(("Operations", ops))
    groups.append(("Inventory", [(TITLES[k], f"/console/{k}") for k in INVENTORY]))
    return groups


def menu_kinds(role: str) -> tuple[str, ...]:
    """The entity kinds whose pages a role may open."""
    return DEMAND if role == "advertiser" else DEMAND + INVENTORY
