"""Who a request's credentials belong to, as the local LibreChat sees them.

The runtime never checks a token itself: it asks its own LibreChat (``GET /api/user``, the
current user, in every version here) with the request's headers, so LibreChat's own
authentication decides, and a refusal is the caller's.
"""

from __future__ import annotations

import json
import time

from streaming_proxy.background import Fetch
from streaming_proxy.errors import RequestError
from streaming_proxy.events import UpstreamRequest

USER_PATH = b"/api/user"


def user_of(fetch: Fetch, request: UpstreamRequest, cutoff: float) -> str | None:
    """The LibreChat user id of the request's credentials (None: LibreChat named nobody)."""
    timeout = max(min(cutoff - time.monotonic(), 10.0), 0.01)
    try:
        status, body = fetch(b"GET", USER_PATH, request.headers_without_body(), timeout)
    except Exception as exc:
        raise RequestError(
            502, f"asking the upstream who the caller is failed ({type(exc).__name__})"
        ) from None
    if status in (401, 403):
        raise RequestError(status, "the upstream did not accept the request's credentials")
    if status != 200:
        raise RequestError(502, f"asking the upstream who the caller is got status {status}")
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    user = data.get("id") or data.get("_id") if isinstance(data, dict) else None
    return user if isinstance(user, str) and user else None
