"""An HTTP bidder: OpenRTB 2.6 over one shared aiohttp ClientSession with keep-alive."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp

from exchange.openrtb import BidRequest
from exchange.transport import BidderError, HardTimeout

HEADERS = {"Content-Type": "application/json", "x-openrtb-version": "2.6"}


def host_of(url: str) -> tuple[str, int]:
    """(hostname, port) of a URL, the key notices are allowed by."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return ((parts.hostname or "").lower(), port)


class HttpBidder:
    """POSTs the bid request to ``url`` and reads at most ``max_response_bytes`` of the answer.

    Redirects are not followed (a 3xx is an error): the request carries user and device data,
    and goes to the configured DSP only.

    ``hard_timeout_s`` bounds a call that the auction already gave up on (see
    :mod:`exchange.fanout`): the exchange stops waiting at the deadline, the connection may finish
    its exchange in the background up to this limit, and is closed past it.
    """

    kind = "http"
    is_async = True

    def __init__(
        self,
        *,
        name: str,
        url: str,
        session: aiohttp.ClientSession,
        max_response_bytes: int = 1 << 20,
        hard_timeout_s: float = 1.0,
        click_url: str | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.host = host_of(url)
        self.session = session
        self.max_response_bytes = max_response_bytes
        self.click_url = click_url
        self._timeout = aiohttp.ClientTimeout(total=hard_timeout_s)

    async def call(self, request: BidRequest, payload: bytes, tmax_ms: int) -> bytes | None:
        del request  # not needed: a late call must not keep the parsed request alive
        try:
            async with self.session.post(
                self.url,
                data=payload,
                headers=HEADERS,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                if resp.status == 204:
                    return None
                if resp.status != 200:
                    raise BidderError(f"HTTP {resp.status}")
                limit = self.max_response_bytes
                if resp.content_length is not None and resp.content_length > limit:
                    raise BidderError(f"body of {resp.content_length} bytes is over {limit}")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(1 << 16):
                    body += chunk
                    if len(body) > limit:
                        raise BidderError(f"body is over {limit} bytes")
                return bytes(body)
        except TimeoutError:
            raise HardTimeout("no complete answer within the hard timeout") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise BidderError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
