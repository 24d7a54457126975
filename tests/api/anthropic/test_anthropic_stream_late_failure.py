"""An Anthropic stream whose turn fails after a `ping` went out but before any output ends with Anthropic's
`event: error`, never the OpenAI-shaped `data: {"error": …}` the SDKs cannot read."""

from __future__ import annotations

from gateway_support import running_stack


def test_a_failure_after_a_ping_ends_the_stream_with_an_anthropic_error_event() -> None:
    with running_stack(accounts=1, server={"keepalive_interval": 0.1}, upstream={"idle_timeout": 0.5},
                       pool={"max_failover": 0}) as stack:
        with stack.http().stream("POST", "/v1/messages", json={
                "model": "claude-haiku-4-5", "max_tokens": 64, "stream": True,
                "messages": [{"role": "user", "content": "silent [sim:stall=3]"}]}) as response:
            assert response.status_code == 200  # the pings committed the status before the failure
            body = b"".join(response.iter_bytes())
        assert body.startswith(b"event: ping\n")
        assert b"event: error\n" in body and b'data: {"error"' not in body, body
        stack.wait_idle()


def test_the_access_line_shows_the_anthropic_status_the_client_got() -> None:
    from test_gateway_stream_admission import access_lines

    with running_stack(accounts=1, pool={"max_failover": 0}) as stack, \
            access_lines() as lines:
        for stream in (False, True):
            response = stack.http().post("/v1/messages", json={
                "model": "claude-haiku-4-5", "max_tokens": 64, "stream": stream,
                "messages": [{"role": "user", "content": "busy [sim:fault=busy]"}]})
            assert response.status_code == 529  # Anthropic's "overloaded" for the gateway's 503
            stack.wait_idle()
            line = next(line for line in lines if response.headers["request-id"] in line)
            assert " status=529 " in line, line
