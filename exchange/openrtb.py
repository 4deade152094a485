"""OpenRTB 2.6 bid requests: parsing, validation and typed views of the fields the exchange uses.

Strict on what OpenRTB requires (``id``; a non-empty ``imp``; each ``imp.id`` present and unique;
each imp with at least one of banner/video/audio/native; ``tmax`` >= 0), lenient on what it only
recommends (no ``site`` nor ``app`` is fine; numbers sent as numeric strings are read as numbers).
The raw dict is kept untouched for passthrough: unknown fields and ``ext`` objects go to bidders
as they came.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from exchange.errors import RequestError

MEDIA_TYPES = ("banner", "video", "audio", "native")
MICROS = 1_000_000


@dataclass(slots=True, frozen=True)
class Deal:
    """One deal of an imp's private marketplace (``imp.pmp.deals[]``)."""

    id: str
    floor_micros: int
    wseat: frozenset[str]


@dataclass(slots=True)
class Imp:
    """A typed view of one impression opportunity; ``raw`` is the imp as received."""

    id: str
    floor_micros: int  # CPM in micro-units of the exchange currency
    bidfloorcur: str
    media: tuple[str, ...]
    w: int | None
    h: int | None
    private: bool
    deals: dict[str, Deal]
    tagid: str | None
    raw: dict[str, Any]

    @property
    def bidfloor(self) -> float:
        """The floor as a CPM in the exchange currency."""
        return self.floor_micros / MICROS


@dataclass(slots=True)
class BidRequest:
    """A typed view of an OpenRTB BidRequest; ``raw`` is the request as received."""

    id: str
    imp: tuple[Imp, ...]
    tmax: int | None
    at: int
    cur: tuple[str, ...]
    bcat: frozenset[str]
    badv: frozenset[str]
    bseat: frozenset[str]
    wseat: frozenset[str]
    site: dict[str, Any] | None
    app: dict[str, Any] | None
    device: dict[str, Any] | None
    user: dict[str, Any] | None
    test: bool
    #: The event's time (unix seconds) when the sender gives one (``ext.gavel.ts``, as the SSP does
    #: for simulated traffic); None means "now" on the reader's clock.
    ts: float | None
    raw: dict[str, Any]
    imp_by_id: dict[str, Imp] = field(repr=False, default_factory=dict)


def loads_object(body: bytes | str, *, what: str = "request") -> dict[str, Any]:
    """Parse a JSON body that must be an object, or raise RequestError naming ``body``."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"{what} body is not valid JSON: {exc}", field="body") from None
    if not isinstance(obj, dict):
        raise RequestError(
            f"{what} body must be a JSON object, not {type(obj).__name__}", field="body"
        )
    return obj


def parse_bid_request(
    body: bytes | str | dict[str, Any],
    *,
    currency: str = "USD",
    rates: dict[str, float] | None = None,
    strict: bool = True,
) -> BidRequest:
    """Parse and validate a BidRequest.

    ``currency`` is the exchange's currency; floors in another ``bidfloorcur`` are converted with
    ``rates`` (units of ``currency`` per unit of the other one) and taken at face value when no rate
    is known. With ``strict=False`` (a DSP reading what an exchange sent) an imp without a media
    object or with a repeated id is kept rather than rejected; ``id`` and ``imp`` are still required.
    """
    raw = body if isinstance(body, dict) else loads_object(body)
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid:
        raise RequestError("id is required and must be a non-empty string", field="id")
    imps_raw = raw.get("imp")
    if not isinstance(imps_raw, list) or not imps_raw:
        raise RequestError("imp is required and must be a non-empty array", field="imp")

    imps: list[Imp] = []
    by_id: dict[str, Imp] = {}
    for i, obj in enumerate(imps_raw):
        imp = _parse_imp(obj, i, currency, rates, strict)
        if imp.id in by_id:
            if strict:
                raise RequestError(f"imp id {imp.id!r} is not unique", field=f"imp[{i}].id")
            continue
        by_id[imp.id] = imp
        imps.append(imp)

    tmax = raw.get("tmax")
    if tmax is not None:
        tmax_f = _number(tmax, "tmax")
        if tmax_f < 0:
            raise RequestError("tmax must be >= 0", field="tmax")
        tmax = int(min(tmax_f, 2**31))
    at = raw.get("at")
    at = 2 if at is None else int(_number(at, "at"))

    return BidRequest(
        id=rid,
        imp=tuple(imps),
        tmax=tmax,
        at=at,
        cur=_strings(raw.get("cur"), "cur"),
        bcat=frozenset(_strings(raw.get("bcat"), "bcat")),
        badv=frozenset(_strings(raw.get("badv"), "badv")),
        bseat=frozenset(_strings(raw.get("bseat"), "bseat")),
        wseat=frozenset(_strings(raw.get("wseat"), "wseat")),
        site=_object(raw.get("site"), "site"),
        app=_object(raw.get("app"), "app"),
        device=_object(raw.get("device"), "device"),
        user=_object(raw.get("user"), "user"),
        test=raw.get("test") in (1, True, "1"),
        ts=_event_time(raw),
        raw=raw,
        imp_by_id=by_id,
    )


def _parse_imp(
    obj: Any, i: int, currency: str, rates: dict[str, float] | None, strict: bool
) -> Imp:
    where = f"imp[{i}]"
    if not isinstance(obj, dict):
        raise RequestError(f"{where} must be an object", field=where)
    iid = obj.get("id")
    if isinstance(iid, int) and not isinstance(iid, bool) and not strict:
        iid = str(iid)
    if not isinstance(iid, str) or not iid:
        raise RequestError(
            f"{where}.id is required and must be a non-empty string", field=f"{where}.id"
        )
    media = tuple(m for m in MEDIA_TYPES if isinstance(obj.get(m), dict))
    if not media and strict:
        raise RequestError(
            f"{where} needs one of banner, video, audio or native", field=f"{where}.banner"
        )
    cur = obj.get("bidfloorcur") or currency
    if not isinstance(cur, str):
        raise RequestError(f"{where}.bidfloorcur must be a string", field=f"{where}.bidfloorcur")
    rate = 1.0 if cur == currency or not rates else rates.get(cur, 1.0)
    floor = _floor_micros(obj.get("bidfloor"), f"{where}.bidfloor", rate)

    w = h = None
    banner = obj.get("banner")
    if isinstance(banner, dict):
        w, h = _size(banner)
    else:
        for m in ("video", "native"):
            sub = obj.get(m)
            if isinstance(sub, dict) and "w" in sub:
                w, h = _size(sub)
                break

    private = False
    deals: dict[str, Deal] = {}
    pmp = obj.get("pmp")
    if isinstance(pmp, dict):
        private = pmp.get("private_auction") in (1, True, "1")
        deals_raw = pmp.get("deals") or []
        if not isinstance(deals_raw, list):
            raise RequestError(f"{where}.pmp.deals must be an array", field=f"{where}.pmp.deals")
        for j, d in enumerate(deals_raw):
            if not isinstance(d, dict) or not isinstance(d.get("id"), str):
                raise RequestError("deal id is required", field=f"{where}.pmp.deals[{j}].id")
            dcur = d.get("bidfloorcur") or cur
            if not isinstance(dcur, str):
                raise RequestError(
                    f"{where}.pmp.deals[{j}].bidfloorcur must be a string",
                    field=f"{where}.pmp.deals[{j}].bidfloorcur",
                )
            drate = 1.0 if dcur == currency or not rates else rates.get(dcur, 1.0)
            deals[d["id"]] = Deal(
                id=d["id"],
                floor_micros=_floor_micros(
                    d.get("bidfloor"), f"{where}.pmp.deals[{j}].bidfloor", drate
                ),
                wseat=frozenset(_strings(d.get("wseat"), f"{where}.pmp.deals[{j}].wseat")),
            )
    tagid = obj.get("tagid")
    return Imp(
        id=iid,
        floor_micros=floor,
        bidfloorcur=cur,
        media=media,
        w=w,
        h=h,
        private=private,
        deals=deals,
        tagid=tagid if isinstance(tagid, str) else None,
        raw=obj,
    )


def _event_time(raw: dict[str, Any]) -> float | None:
    ext = raw.get("ext")
    gavel = ext.get("gavel") if isinstance(ext, dict) else None
    ts = gavel.get("ts") if isinstance(gavel, dict) else None
    if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts) and ts >= 0:
        return float(ts)
    return None


def _size(obj: dict[str, Any]) -> tuple[int | None, int | None]:
    w, h = obj.get("w"), obj.get("h")
    if not (isinstance(w, int) and isinstance(h, int)):
        fmt = obj.get("format")
        if isinstance(fmt, list) and fmt and isinstance(fmt[0], dict):
            w, h = fmt[0].get("w"), fmt[0].get("h")
    return (w if isinstance(w, int) else None, h if isinstance(h, int) else None)


def _floor_micros(value: Any, where: str, rate: float) -> int:
    """A floor in micro-units; a negative floor (seen in the wild) means no floor."""
    if value is None:
        return 0
    floor = _number(value, where) * rate * MICROS
    if not math.isfinite(floor):
        raise RequestError(f"{where} is too large", field=where)
    return max(0, round(floor))


def _number(value: Any, where: str) -> float:
    """A JSON number, or a string holding one (lenient); anything else names the field."""
    if isinstance(value, bool):
        raise RequestError(f"{where} must be a number, not a boolean", field=where)
    if not isinstance(value, int | float | str):
        raise RequestError(f"{where} must be a number", field=where)
    try:
        num = float(value)
    except ValueError:
        raise RequestError(f"{where} must be a number, not {value!r}", field=where) from None
    except OverflowError:
        raise RequestError(f"{where} is too large", field=where) from None
    if not math.isfinite(num):
        raise RequestError(f"{where} must be finite", field=where)
    return num


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RequestError(f"{where} must be an array of strings", field=where)
    return tuple(v for v in value if isinstance(v, str))


def _object(value: Any, where: str) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    raise RequestError(f"{where} must be an object", field=where)
