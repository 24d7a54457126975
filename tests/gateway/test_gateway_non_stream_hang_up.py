"""A non-streaming request whose client hangs up before the answer is complete cancels its turn on every
surface (api/complete.py): the account goes back at once instead of waiting for an upstream that may
never end, and the access line says 499."""

from __future__ import annotations

from typing import Any

import pytest

from gateway_support import running_stack
from test_gateway_stream_admission import _open_stream, _wait_for, access_lines

STALL = "hold [sim:stall=60]"


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"model": "deepseek-chat", "messages": [{"role": "user", "content": STALL}]}),
    ("/v1/messages", {"model": "claude-haiku-4-5", "max_tokens": 1024,
                      "messages": [{"role": "user", "content": STALL}]}),
    ("/v1/responses", {"model": "deepseek-chat", "input": STALL}),
])
def test_a_client_that_hangs_up_before_the_answer_gives_its_account_back(path: str, body: dict[str, Any]) -> None:
    with running_stack(accounts=1) as stack, access_lines() as lines:
        pool = stack.gateway.pool
        sock = _open_stream(stack, path, body)
        try:
            _wait_for(lambda: pool.leases_out == 1, "the request never got the account")
        finally:
            sock.close()
        _wait_for(lambda: pool.leases_out == 0, "the account stayed leased after the client hung up")
        _wait_for(lambda: any(" status=499 " in line and "error=client_closed" in line for line in lines),
                  f"no 499 access line: {lines}")
        stack.wait_idle()
