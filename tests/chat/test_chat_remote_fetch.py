"""chat/remote_fetch.py: image URLs are fetched only from public addresses, pinned to the checked
address, without redirects, with a size cap and a timeout. Everything runs on 127.0.0.1; a test that
needs a successful fetch from loopback says so by passing its own `allow_address`."""

from __future__ import annotations

import asyncio
import base64
import ipaddress

import pytest

from client_support import RawServer, read_http_request
from deepseek2api.chat.attachments import (
    AttachmentError,
    AttachmentKind,
    AttachmentProblem,
)
from deepseek2api.chat.remote_fetch import (
    fetch_image,
    image_from_url,
    is_public_address,
    require_remote,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(500)


def allow_all(address: object) -> bool:
    return True


def answering(status: str, body: bytes, headers: dict[str, str] | None = None, seen: list[str] | None = None):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line, request_headers, _ = await read_http_request(reader)
        if seen is not None:
            seen.append(f"{request_line} host={request_headers.get('host')}")
        head = {"Content-Type": "image/png", "Content-Length": str(len(body)), "Connection": "close"} | (headers or {})
        writer.write(f"HTTP/1.1 {status}\r\n".encode() + "".join(f"{k}: {v}\r\n" for k, v in head.items()).encode()
                     + b"\r\n" + body)
        await writer.drain()

    return handle


@pytest.mark.parametrize(("address", "public"), [
    ("127.0.0.1", False), ("10.1.2.3", False), ("192.168.0.10", False), ("169.254.169.254", False),
    ("100.64.0.1", False), ("0.0.0.0", False), ("::1", False), ("fe80::1", False), ("fc00::5", False),
    ("::ffff:10.0.0.1", False), ("::ffff:127.0.0.1", False), ("224.0.0.1", False),
    ("8.8.8.8", True), ("2001:4860:4860::8888", True),
])
def test_only_global_unicast_addresses_are_public(address, public):
    assert is_public_address(ipaddress.ip_address(address)) is public


async def test_a_loopback_url_is_refused_without_connecting():
    seen: list[str] = []
    async with RawServer(answering("200 OK", PNG, seen=seen)) as server:
        with pytest.raises(AttachmentError) as caught:
            await fetch_image(f"{server.base_url}/cat.png", part="messages[0].content[1]")
    assert caught.value.problem is AttachmentProblem.REMOTE_REFUSED and caught.value.status == 400
    assert "messages[0].content[1]" in str(caught.value)
    assert seen == []


async def test_a_name_that_resolves_to_a_private_address_is_refused():
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]  # one private answer among public ones is enough to refuse

    with pytest.raises(AttachmentError) as caught:
        await fetch_image("https://images.example.test/cat.png", part="p", resolver=resolver)
    assert caught.value.problem is AttachmentProblem.REMOTE_REFUSED


async def test_the_connection_goes_to_the_checked_address_and_the_image_comes_back():
    seen: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # "images.example.test" exists nowhere else: only the pin can reach the server

    async with RawServer(answering("200 OK", PNG, seen=seen)) as server:
        port = server.port
        url = f"http://images.example.test:{port}/pics/cat.png"
        attachment = await fetch_image(url, part="p", resolver=resolver, allow_address=allow_all)
    assert (attachment.kind, attachment.media_type, attachment.filename) == (AttachmentKind.IMAGE, "image/png",
                                                                             "cat.png")
    assert attachment.data == PNG
    assert seen == [f"GET /pics/cat.png HTTP/1.1 host=images.example.test:{port}"]


async def test_redirects_are_refused_not_followed():
    target_seen: list[str] = []
    async with RawServer(answering("200 OK", PNG, seen=target_seen)) as target:
        location = {"Location": f"{target.base_url}/secret.png"}
        async with RawServer(answering("302 Found", b"", headers=location)) as server:
            with pytest.raises(AttachmentError) as caught:
                await fetch_image(f"{server.base_url}/cat.png", part="p", allow_address=allow_all)
    assert caught.value.problem is AttachmentProblem.REMOTE_REFUSED and "redirect" in caught.value.message
    assert target_seen == []


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_image_over_the_cap_is_413(chunked):
    big = PNG + bytes(5_000)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_http_request(reader)
        if chunked:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(big), 1000):
                piece = big[i:i + 1000]
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {len(big)}\r\n\r\n".encode()
                         + big)
        await writer.drain()

    async with RawServer(handle) as server:
        with pytest.raises(AttachmentError) as caught:
            await fetch_image(f"{server.base_url}/big.png", part="p", max_bytes=2_000, allow_address=allow_all)
    assert caught.value.problem is AttachmentProblem.TOO_LARGE and caught.value.status == 413


async def test_a_page_that_is_not_an_image_is_refused():
    async with RawServer(answering("200 OK", b"<html>hi</html>", headers={"Content-Type": "text/html"})) as server:
        with pytest.raises(AttachmentError) as caught:
            await fetch_image(f"{server.base_url}/", part="p", allow_address=allow_all)
    assert caught.value.problem is AttachmentProblem.REMOTE_REFUSED


async def test_a_server_that_never_answers_hits_the_timeout():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async with RawServer(silent) as server:
        with pytest.raises(AttachmentError) as caught:
            await fetch_image(f"{server.base_url}/slow.png", part="p", timeout=0.3, allow_address=allow_all)
    assert caught.value.problem is AttachmentProblem.REMOTE_FAILED


async def test_a_slow_drip_server_is_cut_at_the_timeout_not_when_it_finishes():
    """Headers at once, then one byte a second of a 500-byte image: the whole fetch is bounded by
    `timeout`, the closing of the transfer included (it used to wait in `aclose()` for the drip)."""
    stop = asyncio.Event()

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_http_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 508\r\n\r\n" + PNG[:8])
        await writer.drain()
        for _ in range(500):
            if stop.is_set():
                return
            writer.write(b"\0")
            await writer.drain()
            await asyncio.sleep(0.2)

    async with RawServer(drip) as server:
        with pytest.raises(AttachmentError) as caught:  # not the wait_for's TimeoutError: the drip lasts 100 s
            await asyncio.wait_for(fetch_image(f"{server.base_url}/drip.png", part="p", timeout=0.5,
                                               allow_address=allow_all), 20)
        stop.set()
    assert caught.value.problem is AttachmentProblem.REMOTE_FAILED


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "http://user:pw@example.com/a.png"])
async def test_other_schemes_and_credentials_are_refused(url):
    with pytest.raises(AttachmentError) as caught:
        await fetch_image(url, part="p")
    assert caught.value.status == 400


def test_remote_urls_are_refused_while_fetch_remote_is_off():
    with pytest.raises(AttachmentError) as caught:
        require_remote(False, part="messages[0].content[0]")
    assert caught.value.problem is AttachmentProblem.REMOTE_DISABLED and "files.fetch_remote" in str(caught.value)
    require_remote(True, part="x")


async def test_image_from_url_decodes_data_urls_and_guards_http_ones():


    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    attachment = await image_from_url(data_url, part="p", fetch_remote=False)
    assert attachment.kind is AttachmentKind.IMAGE and attachment.data == PNG
    with pytest.raises(AttachmentError) as caught:
        await image_from_url("data:application/pdf;base64,JVBERi0xLjQK", part="messages[0].content[0]",
                             fetch_remote=False)
    assert caught.value.problem is AttachmentProblem.UNSUPPORTED and "expected an image" in str(caught.value)
    with pytest.raises(AttachmentError) as caught:
        await image_from_url("https://example.com/cat.png", part="p", fetch_remote=False)
    assert caught.value.problem is AttachmentProblem.REMOTE_DISABLED
    async with RawServer(answering("200 OK", PNG)) as server:  # on, but loopback is still refused
        with pytest.raises(AttachmentError) as caught:
            await image_from_url(f"{server.base_url}/cat.png", part="p", fetch_remote=True)
    assert caught.value.problem is AttachmentProblem.REMOTE_REFUSED
