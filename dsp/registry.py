"""Bidders and pricing strategies by name: a registry id (``"constant"``, ``"lin"``),
``"package.module:Class"``, or an entry point.

Two registries: whole bidders (:data:`BIDDERS`, :func:`make_bidder`) and the pricing strategies a
campaign bidder uses (:data:`STRATEGIES`, :func:`make_strategy`). Names resolve with
:func:`importlib.import_module` and :func:`getattr`, never ``eval``. A third-party package
registers its own in its metadata::

    [project.entry-points."gavel.bidders"]
    mybidder = "mylab.bidders:MyBidder"

    [project.entry-points."gavel.strategies"]
    mystrategy = "mylab.pricing:MyStrategy"
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import tomllib
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

import orjson

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "gavel.bidders"
STRATEGY_ENTRY_POINT_GROUP = "gavel.strategies"

# One line per built-in bidder, alphabetised: registry id -> "module:Class".
BIDDERS: dict[str, str] = {
    "campaign": "dsp.bidders.campaign:CampaignBidder",
    "constant": "dsp.bidders.constant:ConstantBidder",
    "random": "dsp.bidders.random_bid:RandomBidder",
}

# One line per built-in pricing strategy, alphabetised: registry id -> "module:Class".
STRATEGIES: dict[str, str] = {
    "constant": "dsp.strategies.constant:ConstantPrice",
    "lin": "dsp.strategies.lin:Linear",
    "mcpc": "dsp.strategies.mcpc:Mcpc",
    "ortb1": "dsp.strategies.ortb1:Ortb1",
    "ortb2": "dsp.strategies.ortb2:Ortb2",
    "pid": "dsp.strategies.pid:PidPacing",
    "random": "dsp.strategies.random_price:RandomPrice",
    "shading": "dsp.strategies.shading:BidShading",
    "truthful": "dsp.strategies.truthful:Truthful",
}


def available() -> dict[str, str]:
    """Every known bidder id with its target: the built-ins, then installed entry points."""
    return _available(BIDDERS, ENTRY_POINT_GROUP)


def available_strategies() -> dict[str, str]:
    """Every known strategy id with its target: the built-ins, then installed entry points."""
    return _available(STRATEGIES, STRATEGY_ENTRY_POINT_GROUP)


def _available(builtins: dict[str, str], group: str) -> dict[str, str]:
    found = dict(builtins)
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep.value)
    return found


def resolve_bidder(spec: str) -> Any:
    """The bidder class (or factory) that ``spec`` names; ValueError naming ``spec`` if none."""
    return _resolve(spec, BIDDERS, ENTRY_POINT_GROUP, "bidder")


def resolve_strategy(spec: str) -> Any:
    """The pricing strategy class that ``spec`` names; ValueError naming ``spec`` if none."""
    return _resolve(spec, STRATEGIES, STRATEGY_ENTRY_POINT_GROUP, "strategy")


def _resolve(spec: str, builtins: dict[str, str], group: str, what: str) -> Any:
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"{what} spec must be a registry id or 'module:Class', got {spec!r}")
    spec = spec.strip()
    if spec in builtins:
        return _load(builtins[spec], spec, what)
    if ":" in spec:
        return _load(spec, spec, what)
    for ep in entry_points(group=group, name=spec):
        try:
            return ep.load()
        except Exception as exc:
            raise ValueError(
                f"{what} {spec!r}: entry point {ep.value!r} failed to load: {exc}"
            ) from exc
    raise ValueError(
        f"unknown {what} {spec!r}: use a registry id "
        f"({', '.join(sorted(_available(builtins, group)))}) or 'package.module:Class'"
    )


def make_strategy(spec: str, params: Mapping[str, object] | None = None) -> Any:
    """Build the pricing strategy ``spec`` names with keyword ``params`` (not reset yet).

    Unknown parameter names raise ValueError naming the parameter and listing the strategy's.
    """
    factory = resolve_strategy(spec)
    if not callable(factory):
        raise ValueError(f"strategy {spec!r} names {type(factory).__name__!r}, not a class")
    kwargs = dict(params or {})
    accepted, open_ended = _parameters(factory)
    unknown = [k for k in kwargs if k not in accepted]
    if unknown and not open_ended:
        raise ValueError(
            f"strategy {spec!r} has no parameter {unknown[0]!r}; "
            f"its parameters are: {', '.join(accepted) or '(none)'}"
        )
    try:
        strategy = factory(**kwargs)
    except TypeError as exc:
        raise ValueError(f"strategy {spec!r} rejected its parameters: {exc}") from exc
    if not callable(getattr(strategy, "price", None)):
        raise ValueError(
            f"strategy {spec!r} built a {type(strategy).__name__} without a price() method"
        )
    return strategy


def make_bidder(spec: str, params: Mapping[str, object] | None = None) -> Any:
    """Build the bidder ``spec`` names with keyword ``params`` and start its run.

    ``seed`` goes to the constructor when it takes one, and always to ``reset(seed)``, which is
    called whenever the bidder has it (a bidder is not ready to bid before its first reset).
    Unknown parameter names raise ValueError naming the parameter and the spec.
    """
    factory = resolve_bidder(spec)
    if not callable(factory):
        raise ValueError(f"bidder {spec!r} names {type(factory).__name__!r}, not a class")
    kwargs = dict(params or {})
    seed = kwargs.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"bidder {spec!r}: parameter 'seed' must be an integer, got {seed!r}")
    accepted, open_ended = _parameters(factory)
    if not open_ended:
        if "seed" not in accepted:
            kwargs.pop("seed", None)
        unknown = [k for k in kwargs if k not in accepted]
        if unknown:
            raise ValueError(
                f"bidder {spec!r} has no parameter {unknown[0]!r}; "
                f"its parameters are: {', '.join(accepted) or '(none)'}"
            )
    try:
        bidder = factory(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bidder {spec!r} rejected its parameters: {exc}") from exc
    if not callable(getattr(bidder, "bid", None)):
        raise ValueError(f"bidder {spec!r} built a {type(bidder).__name__} without a bid() method")
    reset = getattr(bidder, "reset", None)
    if callable(reset):
        reset(seed)
    return bidder


def parse_params(items: Iterable[str]) -> dict[str, object]:
    """``["price=1.5", "seat=acme", "debug=true"]`` -> ``{"price": 1.5, "seat": "acme", ...}``.

    A value is read as JSON (numbers, ``true``/``false``, quoted strings, arrays, objects), else
    as a TOML value (``1_000``, ``inf``, ``'single quoted'``); anything else stays the string it
    was. Later items win over earlier ones with the same key.
    """
    params: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"parameter {item!r} must look like KEY=VALUE with KEY an identifier")
        params[key] = parse_value(value)
    return params


def parse_value(text: str) -> object:
    """One ``KEY=VALUE`` value as a typed literal (int, float, bool, list, dict) or a string."""
    stripped = text.strip()
    if not stripped:
        return text
    try:
        value = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        try:
            value = tomllib.loads(f"v = {stripped}")["v"]
        except tomllib.TOMLDecodeError:
            return text
    return value if _plain(value) else text


def _plain(value: object) -> bool:
    """JSON-like data only (a TOML date or time stays the string it was written as)."""
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    return False


def load_object(target: str, *, what: str = "object") -> Any:
    """The object ``"package.module:attr.path"`` names (importlib + getattr, never eval)."""
    return _load(target, target, what)


def _load(target: str, spec: str, what: str = "bidder") -> Any:
    module_name, _, attr_path = target.partition(":")
    if not module_name or not attr_path:
        raise ValueError(f"{what} spec {spec!r} must look like 'package.module:Class'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{what} {spec!r}: cannot import module {module_name!r}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(
                f"{what} {spec!r}: module {module_name!r} has no attribute {attr_path!r}"
            ) from None
    return obj


def _parameters(factory: Any) -> tuple[tuple[str, ...], bool]:
    """The keyword parameter names ``factory`` takes, and whether it takes ``**kwargs``."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return (), True
    names = tuple(
        p.name
        for p in sig.parameters.values()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    return names, open_ended
