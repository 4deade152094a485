"""Errors the exchange reports to its callers: each names the field at fault."""

from __future__ import annotations

# OpenRTB 2.6 "No-Bid Reason Codes" (list 5.24) used by the exchange.
NBR_UNKNOWN = 0
NBR_TECHNICAL = 1
NBR_INVALID_REQUEST = 2


class RequestError(ValueError):
    """A bid request (or ad request) that cannot be auctioned; answered with HTTP 400."""

    def __init__(self, message: str, *, field: str, nbr: int = NBR_INVALID_REQUEST) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.nbr = nbr

    def to_json(self) -> dict[str, object]:
        return {"error": self.message, "field": self.field, "nbr": self.nbr}


class InvalidResponse(ValueError):
    """A bidder's response body as a whole is unusable (not JSON, wrong shape, wrong id)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
