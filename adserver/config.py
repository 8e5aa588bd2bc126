"""Settings: one typed object read from defaults, a TOML file, ADSERVER_* variables and flags.

Later sources win: defaults < TOML file (`--config` or ADSERVER_CONFIG) < environment < flags.
Every invalid setting is reported at once, named as the user wrote it, before anything starts.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import tomllib
import zoneinfo
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from adserver.common.validation import FieldError, Invalid, convert

ENV_PREFIX = "ADSERVER_"
# Variables with the prefix that are not settings.
ENV_NOT_SETTINGS = {"ADSERVER_CONFIG", "ADSERVER_DEBUG_BUILD", "ADSERVER_API_KEY"}

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every setting, with the default a user can rely on."""

    data_dir: str = "./indexes"
    """Data root: control store, snapshots, live state, models, event logs."""
    host: str = "127.0.0.1"
    """Address of the decision and beacon server."""
    port: Port = 8080
    """Port of the decision and beacon server (0 picks a free one)."""
    api_host: str = "127.0.0.1"
    """Address of the management API and console."""
    api_port: Port = 8081
    """Port of the management API and console (0 picks a free one)."""
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    """Decision worker processes."""
    admin_key: Annotated[str, msgspec.Meta(min_length=16)] | None = None
    """A bootstrap network-admin API key, accepted as given (store it like a password)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    """How processes log to stderr: text lines, or one JSON object per line."""
    time_zone: str = "UTC"
    """Default time zone of new networks (IANA name), used for dayparting and daily caps."""
    public_url: Annotated[str, msgspec.Meta(pattern="^https?://[^/]+$")] | None = None
    """Scheme and host the tracking URLs point at (default: the host the request came to)."""
    decision_url: Annotated[str, msgspec.Meta(pattern="^https?://[^/]+$")] | None = None
    """Where the console's preview sends decision requests (default: http://host:port;
    `adserver run` and `demo` set it to the decision port they bound)."""
    max_candidates: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 128
    """Eligible ads taken from each posting list of a placement, best first (0: all)."""
    token_ttl_hours: Annotated[float, msgspec.Meta(gt=0, le=24 * 90)] = 24 * 7
    """How long a tracking URL stays valid."""
    key_rotation_hours: Annotated[float, msgspec.Meta(gt=0)] = 24
    """How often the tracking-token signing key is replaced."""
    key_grace_hours: Annotated[float, msgspec.Meta(ge=0)] = 24 * 8
    """How long a replaced signing key still verifies (keep >= token_ttl_hours)."""
    attribution_match: Literal["product", "brand"] = "product"
    """A conversion credits an ad promoting the same product, or any product of its brand."""
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    """Largest request body accepted; larger ones get 413."""
    max_event_multiplier: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100
    """Largest `eventMultiplier` a revenue-adjusting beacon may carry (server to server,
    with a network admin key)."""
    max_revenue_adjustment: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)] = 1000.0
    """Largest `override` or `additional` revenue of one beacon, in the network's currency."""
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1000
    """Connections each server process (a decision worker, the control process) keeps open
    at once; a request beyond them is answered 503."""
    read_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    """Seconds a client has to send a request's head (from opening the connection or the
    request's first byte), and the longest pause within its body; then 408 and the
    connection is closed (slow clients)."""
    rate_per_address: Annotated[float, msgspec.Meta(ge=0, le=1_000_000)] = 0.0
    """Requests a second each client address may send to a server process, bursts of twice
    that (0: no limit; a storefront's backend sends its shoppers' decisions from a few
    addresses); beyond it, 429 with Retry-After."""
    rate_per_key: Annotated[float, msgspec.Meta(ge=0, le=1_000_000)] = 1000.0
    """Requests a second a request carrying an API key may make with that key, per server
    process, bursts of twice that (0: no limit)."""
    bad_keys_per_minute: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 20
    """Bad API keys an address may present a minute; past them its requests with a key get
    429 until the minute's allowance refills (0: no back-off)."""
    tls_cert: str | None = None
    """A PEM certificate (chain) file: both listeners serve HTTPS with it and `tls_key`."""
    tls_key: str | None = None
    """The PEM private key of `tls_cert`."""
    metrics_allow: str = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
    """Client networks (comma-separated CIDRs) that may read the decision port's /metrics
    without a key ("" : none; "0.0.0.0/0,::/0": anyone)."""
    metrics_key: Annotated[str, msgspec.Meta(min_length=16)] | None = None
    """A bearer token that lets any client read /metrics (`Authorization: Bearer <key>`)."""
    relevance_threshold: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.3
    """Least relevance (cosine of the query and the product, 0-1) a sponsored product needs
    to be shown for a search, product or category page."""
    keyword_relevance_floor: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.1
    """Least measured relevance a product needs for a keyword its flight bought to lift it to
    relevance 1 (a keyword match never shows a product that does not plausibly match)."""
    embed_rebuild_interval_s: Annotated[float, msgspec.Meta(ge=0, le=30 * 86400)] = 600.0
    """How often the embedding model built from the catalog is checked against it once the
    catalog changed; it is trained again when the catalog doubled or new products use words
    it does not know (a dropped-in model is never replaced)."""
    relevance_alpha: Annotated[float, msgspec.Meta(ge=0, le=10)] = 1.0
    """Sponsored products rank by bid x pCTR x relevance^alpha (0: relevance only gates)."""
    retrieval_k: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    """Nearest sponsored products retrieved per placement (HNSW)."""
    hnsw_ef: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 128
    """HNSW search breadth (ef; never less than retrieval_k): higher finds more of the true
    nearest products and costs more per uncached query (BENCHMARKS.md, retrieval)."""
    model_keep_versions: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 5
    """CTR/CVR model versions kept on disk per model besides the active, shadow, previous
    and pinned ones (older ones are pruned; their registry rows stay)."""
    event_retention_days: Annotated[float, msgspec.Meta(ge=1, le=3650)] = 30.0
    """How long event and decision log segments are kept once aggregated (training,
    evaluations and feature importances read recent days of them)."""
    train_interval_s: Annotated[float, msgspec.Meta(ge=0)] = 3600.0
    """How often the control process retrains the CTR and CVR models from the logs (when
    they grew), each new version going through the gate (0: never; `adserver train`)."""
    model_gate_logloss: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.01
    """A model activates only if its held-out log loss is at most this share above the
    active model's."""
    model_gate_auc: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.005
    """...and its AUC at most this much below the active model's..."""
    model_gate_calibration: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.25
    """...and its calibration (predicted / observed positives) within 1 +- this."""
    personalizer_reward_wait_s: Annotated[float, msgspec.Meta(ge=0, le=2 * 86400)] = 600.0
    """How long a rank waits for its rewards before it is learned from."""
    personalizer_default_reward: Annotated[float, msgspec.Meta(ge=-1, le=1)] = 0.0
    """The reward of a rank that got none within the wait time."""
    personalizer_reward_aggregation: Literal["earliest", "sum"] = "earliest"
    """Which rewards of an event count: the earliest, or their sum (clipped to [-1, 1])."""
    personalizer_exploration: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    """Share of rank calls explored (epsilon-greedy)."""
    personalizer_learn_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """How often the control process learns from joined events and publishes a policy."""
    personalizer_learning_rate: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.03
    """Step size of the policy's (AdaGrad) updates: a step is at most this per weight."""

    def metrics_networks(self) -> tuple[Any, ...]:
        """`metrics_allow` parsed (ValueError when it is not CIDRs)."""
        return _networks(self.metrics_allow)

    def may_read_metrics(self, host: str, authorization: str) -> bool:
        """Whether a client at `host` (with this Authorization header) may read /metrics:
        from an allowed network, or with `Bearer <metrics_key>`."""
        try:
            address = ipaddress.ip_address(host)
            if any(address in net for net in self.metrics_networks()):
                return True
        except ValueError:
            pass
        key = self.metrics_key
        return (
            key is not None
            and authorization[:7].lower() == "bearer "
            and hmac.compare_digest(authorization[7:].strip().encode(), key.encode())
        )

    def check(self) -> list[FieldError]:
        errors = []
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors.append(FieldError("time_zone", f"unknown time zone {self.time_zone!r}"))
        if self.key_grace_hours < self.token_ttl_hours:
            errors.append(
                FieldError(
                    "key_grace_hours",
                    "must be at least token_ttl_hours, or "
                    "tracking URLs would stop verifying before they expire",
                )
            )
        if bool(self.tls_cert) != bool(self.tls_key):
            errors.append(
                FieldError(
                    "tls_key" if self.tls_cert else "tls_cert", "tls_cert and tls_key go together"
                )
            )
        for name in ("tls_cert", "tls_key"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                errors.append(FieldError(name, f"no such file: {path}"))
        try:
            self.metrics_networks()
        except ValueError as e:
            errors.append(FieldError("metrics_allow", f"not a list of CIDR networks: {e}"))
        if self.api_port == self.port and self.port != 0 and self.host == self.api_host:
            errors.append(FieldError("api_port", "must differ from port"))
        return errors


def _networks(text: str) -> tuple[Any, ...]:
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    )


SETTINGS = tuple(f.name for f in msgspec.structs.fields(Config))


def relevance(config: Config) -> tuple[float, float, float, int, int]:
    """The sponsored-product settings the decision pipeline reads, as one tuple: (threshold,
    keyword floor, alpha, retrieval k, HNSW ef)."""
    return (
        config.relevance_threshold,
        config.keyword_relevance_floor,
        config.relevance_alpha,
        config.retrieval_k,
        config.hnsw_ef,
    )


class ConfigError(Exception):
    """Invalid settings; the message lists every one."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        lines = "\n".join(f"  {e.field}: {e.message}" for e in errors)
        super().__init__(f"invalid configuration:\n{lines}")


def load(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    path: str | None = None,
) -> Config:
    """Read the settings, raising ConfigError naming every invalid one."""
    env = os.environ if env is None else env
    origin: dict[str, str] = {}
    values: dict[str, Any] = {}
    errors: list[FieldError] = []

    path = path or env.get("ADSERVER_CONFIG")
    if path:
        try:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError([FieldError(path, f"cannot read config file: {e}")]) from None
        for key, value in doc.get("adserver", doc).items():
            values[key] = value
            origin[key] = f"{path}: {key}"

    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_SETTINGS:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in SETTINGS:
            errors.append(FieldError(name, "unknown setting"))
            continue
        values[key] = value
        origin[key] = name

    for key, value in (flags or {}).items():
        if value is not None:
            values[key] = value
            origin[key] = "--" + key.replace("_", "-")

    try:
        config = convert(Config, values, strict=False, name_of=lambda k: origin.get(k, k))
    except Invalid as e:
        errors.extend(e.errors)
        config = None
    if errors or config is None:
        raise ConfigError(errors)
    return config
