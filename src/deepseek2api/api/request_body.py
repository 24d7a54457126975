"""Reading a request: its JSON body, with the same clear 400s on every surface, and its hang-up.

Shared by the API surfaces (a surface never imports another one). Strict where Python's parser is
lenient: NaN/Infinity are not JSON, and a lone UTF-16 surrogate could not be sent upstream.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.types import Receive

from .errors import bad_request

# Cheap pre-check for a `\\udXXX` escape or a raw surrogate (json.loads decodes bytes with surrogatepass).
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def _reject_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259), though Python's parser accepts them."""
    raise ValueError(f"{name} is not allowed in JSON")


def _has_lone_surrogate(body: Any) -> bool:
    """True when a string holds half a surrogate pair (it could not be encoded to send upstream)."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


async def read_json(request: Request) -> Any:
    """The parsed body; raises a 400 `invalid_json` ApiError that says what is wrong."""
    raw = await request.body()
    if not raw.strip():
        raise bad_request("The request body is empty; send a JSON object.", None, "invalid_json")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise bad_request("The request body is not valid UTF-8.", None, "invalid_json") from None
    except RecursionError:
        raise bad_request("The request body is not valid JSON: nested too deeply.", None, "invalid_json") from None
    except ValueError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}.", None, "invalid_json") from None
    if _SURROGATE.search(raw) and _has_lone_surrogate(body):
        raise bad_request("The request body contains a lone UTF-16 surrogate (U+D800-U+DFFF, escaped or raw), "
                          "which is not valid Unicode text.", None, "invalid_json")
    return body


async def disconnected(receive: Receive) -> None:
    """Returns when the client hangs up (a non-stream turn is cancelled then, freeing its account)."""
    while (await receive())["type"] != "http.disconnect":
        pass
