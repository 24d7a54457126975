"""Fetch an http(s) image URL for an attachment — only when the operator allows it, and only from
public addresses.

A gateway that fetches any URL a client names is a server-side request forgery tool: it could read
the cloud metadata service, the admin page on localhost or anything on the private network. So
(`files.fetch_remote` must be on first) the host is resolved here, EVERY address it resolves to must
be a public unicast one, and the connection is pinned to the checked addresses (curl's RESOLVE), so a
second DNS answer cannot swap in a private address. Redirects are refused, not followed (a public
server could redirect to a private one). The body is capped while it streams, and the whole fetch is
bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from curl_cffi import CurlError, CurlOpt
from curl_cffi.const import CurlECode
from curl_cffi.requests import AsyncSession, Response

from .attachments import (
    DEFAULT_MAX_BYTES,
    Attachment,
    AttachmentError,
    AttachmentKind,
    AttachmentProblem,
    decode_data_url,
    from_bytes,
)

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


def is_public_address(address: IPAddress) -> bool:
    """True for a global unicast address (not private, loopback, link-local, CGNAT, multicast, reserved …)."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public_address(mapped)
    return address.is_global and not address.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (non-blocking: the loop's getaddrinfo)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _refused(part: str, message: str) -> AttachmentError:
    return AttachmentError(AttachmentProblem.REMOTE_REFUSED, part, message)


def _failed(part: str, message: str) -> AttachmentError:
    return AttachmentError(AttachmentProblem.REMOTE_FAILED, part, message)


async def fetch_image(url: str, *, part: str, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = 10.0,
                      resolver: Resolver = system_resolver,
                      allow_address: Callable[[IPAddress], bool] = is_public_address,
                      index: int = 1) -> Attachment:
    """GET an image URL → an image Attachment; `AttachmentError` (with the part named) otherwise.

    The caller checks `files.fetch_remote` first (`require_remote`). `resolver` and `allow_address`
    exist for tests; production uses the defaults.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise AttachmentError(AttachmentProblem.INVALID, part, "is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise AttachmentError(AttachmentProblem.INVALID, part, "expected an http(s) URL or a data: URL")
    if parts.username or parts.password:
        raise _refused(part, "URLs with credentials are not fetched")
    host = parts.hostname
    try:
        async with asyncio.timeout(timeout):
            try:
                literal: IPAddress | None = ipaddress.ip_address(host)
            except ValueError:
                literal = None
            addresses = [str(literal)] if literal is not None else await resolver(host, port)
            checked = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
            if not checked:
                raise _failed(part, f"{host} does not resolve")
            if not all(allow_address(a) for a in checked):
                log.info("refused to fetch an image from %s: non-public address", host)
                raise _refused(part, f"{host} resolves to a private, loopback or otherwise non-public address")
            data, media_type = await _get(url, host, port, checked, literal is None, max_bytes, timeout, part)
    except TimeoutError:
        raise _failed(part, f"no complete answer within {timeout:g} s") from None
    except OSError as exc:  # DNS failure
        raise _failed(part, f"cannot resolve {host} ({exc.strerror or exc})") from None
    attachment = from_bytes(data, media_type or None, part=part, filename=parts.path.rsplit("/", 1)[-1] or None,
                            max_bytes=max_bytes, index=index)
    if attachment.kind is not AttachmentKind.IMAGE:
        raise _refused(part, "the URL did not return an image")
    return attachment


async def _get(url: str, host: str, port: int, addresses: list[IPAddress], pin: bool, max_bytes: int,
               timeout: float, part: str) -> tuple[bytes, str]:
    # curl's own deadline for the whole transfer: cancelling the task alone left `aclose()` waiting for a
    # slow-drip server to finish, so curl must stop the transfer itself.
    options: dict[CurlOpt, object] = {CurlOpt.MAXFILESIZE_LARGE: max_bytes, CurlOpt.NOSIGNAL: 1,
                                      CurlOpt.TIMEOUT_MS: max(1, int(timeout * 1000))}
    if pin:
        shown = ",".join(f"[{a}]" if a.version == 6 else str(a) for a in addresses)
        options[CurlOpt.RESOLVE] = [f"{host}:{port}:{shown}"]
    session: AsyncSession[Response] = AsyncSession(trust_env=False, allow_redirects=False, curl_options=options)
    try:
        response = await session.request("GET", url, stream=True, timeout=timeout, headers={"Accept": "image/*"})
        try:
            if 300 <= response.status_code < 400:
                raise _refused(part, f"the URL redirects (HTTP {response.status_code}); redirects are not followed")
            if response.status_code != 200:
                raise _failed(part, f"the URL answered HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_content():
                body += chunk
                if len(body) > max_bytes:
                    raise AttachmentError(AttachmentProblem.TOO_LARGE, part,
                                          f"the image is over the limit of {max_bytes} bytes")
            media_type = str(response.headers.get("content-type") or "")
            return bytes(body), media_type
        finally:
            await response.aclose()
    except CurlError as exc:
        if getattr(exc, "code", None) == CurlECode.FILESIZE_EXCEEDED:
            raise AttachmentError(AttachmentProblem.TOO_LARGE, part,
                                  f"the image is over the limit of {max_bytes} bytes") from None
        detail = str(exc).removeprefix("Failed to perform, ").split(" See https://", 1)[0].rstrip(". ")
        log.debug("remote image fetch from %s failed: %s", host, detail)
        raise _failed(part, f"fetch failed ({detail})") from None
    finally:
        await session.close()


def require_remote(enabled: bool, *, part: str) -> None:
    """Refuse an http(s) URL (400) when `files.fetch_remote` is off."""
    if not enabled:
        raise AttachmentError(AttachmentProblem.REMOTE_DISABLED, part,
                              "image URLs are not fetched by this gateway (files.fetch_remote is off); "
                              "send the image as a data: URL or base64")


async def image_from_url(url: str, *, part: str, fetch_remote: bool, max_bytes: int = DEFAULT_MAX_BYTES,
                         timeout: float = 10.0, index: int = 1) -> Attachment:
    """An image given by URL, the way every surface gets one (OpenAI `image_url.url`, Anthropic
    `{"type":"url"}`, Responses `image_url`): a `data:` URL is decoded, an http(s) URL is fetched only
    when `fetch_remote` is on (`files.fetch_remote`). Anything that is not an image → 400."""
    if not isinstance(url, str) or not url:
        raise AttachmentError(AttachmentProblem.INVALID, part, "image URL is missing")
    if url[:5].lower() == "data:":
        attachment = await decode_data_url(url, part=part, max_bytes=max_bytes, index=index)
        if attachment.kind is not AttachmentKind.IMAGE:
            raise AttachmentError(AttachmentProblem.UNSUPPORTED, part,
                                  f"expected an image, got {attachment.media_type}")
        return attachment
    if url[:7].lower() == "http://" or url[:8].lower() == "https://":
        require_remote(fetch_remote, part=part)
        return await fetch_image(url, part=part, max_bytes=max_bytes, timeout=timeout, index=index)
    raise AttachmentError(AttachmentProblem.INVALID, part, "expected a data: URL or an http(s) URL")


__all__ = [
    "IPAddress", "Resolver", "fetch_image", "image_from_url", "is_public_address", "require_remote",
    "system_resolver",
]
