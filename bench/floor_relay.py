"""The transport floor: DeepSeek's SSE read with curl_cffi and written to the client through uvicorn, with
no logic in between. A benchmark server, not part of the product (bench/streaming.py starts it).

Same process model as the gateway: one Python process, uvicorn on uvloop with httptools, the same curl_cffi
session options (browser fingerprint, HTTP/2 over TLS, NOSIGNAL), `gc.freeze()` and two malloc arenas. Per
request it does the gateway's upstream work and nothing else: a chat session and a PoW challenge
concurrently, the PoW solved in a thread with the native solver, the completion streamed — every chunk curl
hands over goes out as one `http.response.body` as it is — then the session deleted. What a gateway spends
per streamed piece above this process's figure is its own logic.

    python bench/floor_relay.py --port 8100 --upstream http://127.0.0.1:8000 --accounts a@x:pw,b@x:pw
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from curl_cffi import CurlHttpVersion, CurlOpt
from curl_cffi.requests import AsyncSession
from curl_cffi.requests.streams import STREAM_END

from deepseek2api.deepseek import pow as pow_module
from deepseek2api.deepseek.profile import ClientProfile

COMPLETION = "/api/v0/chat/completion"
ACCEPT_ENCODING = "gzip, deflate, br"  # the gateway's (deepseek/transport_curl.py)
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Relay:
    """The ASGI app: POST any path with `{"prompt": …}` streams that turn's upstream bytes back."""

    def __init__(self, upstream: str, accounts: list[tuple[str, str]]) -> None:
        self.upstream = upstream.rstrip("/")
        self.accounts = accounts
        self.tokens: asyncio.Queue[str] = asyncio.Queue()
        self.session: AsyncSession[Any] | None = None

    async def _post(self, path: str, body: dict[str, Any], token: str | None) -> Any:
        assert self.session is not None
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        response = await self.session.request("POST", self.upstream + path, headers=headers,
                                              data=json.dumps(body).encode(), timeout=(10.0, 20.0),
                                              accept_encoding=ACCEPT_ENCODING)
        return response.json()["data"]["biz_data"]

    async def startup(self) -> None:
        profile = ClientProfile()
        self.session = AsyncSession(impersonate=profile.impersonate, max_clients=256,
                                    http_version=CurlHttpVersion.V2TLS, curl_options={CurlOpt.NOSIGNAL: 1},
                                    allow_redirects=False, trust_env=False)
        for email, password in self.accounts:
            data = await self._post("/api/v0/users/login", {"email": email, "password": password,
                                                            "device_id": "floor", "os": "android"}, None)
            self.tokens.put_nowait(data["user"]["token"])

    async def _pow(self, token: str) -> str:
        data = await self._post("/api/v0/chat/create_pow_challenge", {"target_path": COMPLETION}, token)
        challenge = pow_module.PowChallenge.from_dict(data["challenge"])
        answer = await pow_module.solve_async(challenge)
        return pow_module.encode_pow_response(challenge, answer, COMPLETION)

    async def _session_id(self, token: str) -> str:
        data = await self._post("/api/v0/chat_session/create", {"agent": "chat"}, token)
        return str(data["chat_session"]["id"])

    async def turn(self, prompt: str, send: Send) -> None:
        assert self.session is not None
        token = await self.tokens.get()
        session_id = None
        try:
            session_id, pow_header = await asyncio.gather(self._session_id(token), self._pow(token))
            body = {"chat_session_id": session_id, "parent_message_id": None, "model_type": "default",
                    "prompt": prompt, "ref_file_ids": [], "thinking_enabled": False, "search_enabled": False,
                    "preempt": False}
            response = await self.session.request(  # the gateway's stream timeouts (connect, idle)
                "POST", self.upstream + COMPLETION, data=json.dumps(body).encode(), stream=True,
                timeout=(10.0, 120.0), accept_encoding=ACCEPT_ENCODING,
                headers={"content-type": "application/json", "authorization": f"Bearer {token}",
                         "x-ds-pow-response": pow_header})
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            chunks = response.queue
            while (chunk := await chunks.get()) is not STREAM_END:
                if chunk.__class__ is bytes:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                else:
                    break  # a curl error: end the body
            await response.aclose()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if session_id is not None:
                await self._post("/api/v0/chat_session/delete", {"chat_session_id": session_id}, token)
            self.tokens.put_nowait(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                if message["type"] == "lifespan.startup":
                    await self.startup()
                    await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":  # readiness probe
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await self.turn(json.loads(body)["prompt"], send)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--accounts", required=True, help="email:password,…")
    args = parser.parse_args()
    import uvicorn

    from deepseek2api.tuning import tune_for_serving

    accounts = [tuple(item.split(":", 1)) for item in args.accounts.split(",")]
    app = Relay(args.upstream, accounts)  # type: ignore[arg-type]
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, loop="uvloop", http="httptools",
                                           log_level="warning", access_log=False, log_config=None))
    tune_for_serving()
    server.run()


if __name__ == "__main__":
    main()
