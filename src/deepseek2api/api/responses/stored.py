"""The Responses surface's use of the response store: whose responses, what a follow-up sees, what is kept.

- Ownership: every call names the caller's `owner` (api/auth.py `Caller.fingerprint`, a hash of the key
  or, with `token_passthrough`, of the bearer). Another key's response or item is answered exactly as an
  unknown one (404), so ids cannot be probed across keys.
- A follow-up (`previous_response_id`) walks the chain of links (store/responses.py `chain_of`); every
  `item_reference`, in the chain or in the new input, is resolved from the owner's stored items.
- Size: a request whose stored form exceeds `responses.max_response_bytes`, or that would take its key
  past `responses.max_key_bytes`, is a 400 before any upstream work (send `store: false`, or delete stored
  responses). An answer whose output pushes it over anyway (rare: outputs are small) is answered and not
  stored, with a warning in the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...store.responses import (
    BrokenChain,
    PutResult,
    ResponseStore,
    StoredResponse,
    chain_of,
    encoded,
    find_items,
    get_one,
)
from ..auth import Caller
from ..errors import ApiError, RequestInvalid, not_found
from .protocol import ResponsesRequest, referenced_ids, resolve_references, stored_form

log = logging.getLogger(__name__)


def owner_of(caller: Caller) -> str:
    """The owner a caller's responses are stored under."""
    return caller.fingerprint or f"name:{caller.key_name}"


def missing_response(response_id: str, param: str | None = None) -> ApiError:
    """The 404 for an unknown, expired, deleted, never-stored or another key's response id."""
    what = "Previous response" if param else "Response"
    return not_found(f"{what} with id '{response_id}' not found (unknown, expired, deleted, or sent with "
                     "store=false).", "previous_response_not_found" if param else "not_found", param)


def broken_chain(response_id: str, missing: str) -> ApiError:
    return not_found(f"Previous response with id '{response_id}' cannot be continued: the earlier response "
                     f"'{missing}' in its chain was deleted.", "previous_response_not_found",
                     "previous_response_id")


def store_unavailable() -> ApiError:
    """The response store could not be read (a disk, database or Redis failure): a retryable 503."""
    return ApiError(503, "The gateway's response store is unavailable; see its log.", "server_error", None,
                    "response_store_unavailable", retry_after=5)


@dataclass(slots=True)
class Continuation:
    """What a request continues: the earlier items (`context`), its own input with references resolved
    (`items`), and the stored responses it used (renewed with it, `StoredResponses.save`)."""

    context: list[dict[str, Any]] = field(default_factory=list)
    items: tuple[dict[str, Any], ...] = ()
    used: list[StoredResponse] = field(default_factory=list)
    stored_input: list[dict[str, Any]] = field(default_factory=list)

    def request(self, req: ResponsesRequest) -> ResponsesRequest:
        """`req` with its references resolved, for the turn (the store keeps the references)."""
        return dataclasses.replace(req, items=self.items)


class StoredResponses:
    """The store as the Responses surface uses it; every failure of the store is a 503."""

    def __init__(self, store: ResponseStore) -> None:
        self.store = store

    async def continuation(self, req: ResponsesRequest, caller: Caller) -> Continuation:
        """The chain and references of `req` resolved (404s naming `previous_response_id` or `input`),
        and, when it is to be stored, its size checked against the limits (400s)."""
        owner = owner_of(caller)
        chain: list[StoredResponse] = []
        try:
            if req.previous_response_id is not None:
                try:
                    found_chain = await chain_of(self.store, owner, req.previous_response_id)
                except BrokenChain as exc:
                    raise broken_chain(req.previous_response_id, exc.missing) from None
                if found_chain is None:
                    raise missing_response(req.previous_response_id, "previous_response_id")
                chain = found_chain
            earlier = [item for record in chain for item in (*record.input_items, *(record.body.get("output") or ()))
                       if isinstance(item, dict)]
            wanted = referenced_ids(earlier) + referenced_ids(req.items)
            found, holders = await find_items(self.store, owner, wanted) if wanted else ({}, [])
        except ApiError:
            raise
        except Exception:
            log.warning("the response store failed", exc_info=True)
            raise store_unavailable() from None
        done = Continuation(resolve_references(earlier, found), tuple(resolve_references(req.items, found)),
                            [*chain, *holders])
        if req.store:
            done.stored_input = stored_form(req.items)
            await self._admit(req, owner, done.stored_input)
        return done

    async def _admit(self, req: ResponsesRequest, owner: str, items: list[dict[str, Any]]) -> None:
        limits = self.store.limits
        size = await asyncio.to_thread(_size_of, items, req.echo)
        if size > limits.max_response_bytes:
            raise RequestInvalid(f"This request is {size} bytes as stored; a stored response holds at most "
                                 f"{limits.max_response_bytes} (responses.max_response_bytes). Send store=false "
                                 "to answer it without storing it.", "input", "response_too_large")
        try:
            used = await self.store.used(owner)
        except Exception:
            log.warning("the response store failed", exc_info=True)
            raise store_unavailable() from None
        if used + size > limits.max_owner_bytes:
            raise RequestInvalid(f"This key's stored responses take {used} bytes; storing this one ({size} bytes) "
                                 f"would pass the limit of {limits.max_owner_bytes} (responses.max_key_bytes). "
                                 "Send store=false, delete stored responses (DELETE /v1/responses/{id}), or wait "
                                 "for them to expire.", "store", "response_store_full")

    async def save(self, req: ResponsesRequest, done: Continuation, caller: Caller, body: dict[str, Any]) -> None:
        """Keep the response for `previous_response_id` and `item_reference` (never fails the response)."""
        if not req.store:
            return
        owner = owner_of(caller)
        record = StoredResponse(body["id"], owner, body, done.stored_input, req.previous_response_id,
                                time.time() + self.store.ttl)
        try:
            data, size = await asyncio.to_thread(encoded, record)
            result = await self.store.put(record, size, data)
            if result is PutResult.STORED:
                await self.store.extend(owner, done.used, record.expires_at)  # what it builds on lives as long
            else:
                log.warning("response %s (%d bytes) not stored: %s", record.id, size, result.value)
        except Exception:
            log.warning("could not store response %s", body["id"], exc_info=True)

    # ---- GET / DELETE -------------------------------------------------------------------

    async def retrieve(self, response_id: str, caller: Caller) -> dict[str, Any]:
        return (await self._stored(response_id, caller)).body

    async def delete(self, response_id: str, caller: Caller) -> dict[str, Any]:
        try:
            deleted = await self.store.delete(owner_of(caller), response_id)
        except Exception:
            log.warning("the response store failed", exc_info=True)
            raise store_unavailable() from None
        if not deleted:
            raise missing_response(response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    async def input_items(self, response_id: str, caller: Caller, *, limit: int, order: str,
                          after: str | None) -> dict[str, Any]:
        stored = await self._stored(response_id, caller)
        items = await self._listed(stored.input_items, owner_of(caller))
        if order == "desc":
            items.reverse()
        if after is not None:
            ids = [item.get("id") for item in items]
            if after in ids:
                items = items[ids.index(after) + 1:]
        page = items[:limit]
        return {"object": "list", "data": page, "first_id": page[0].get("id") if page else None,
                "last_id": page[-1].get("id") if page else None, "has_more": len(items) > limit}

    async def _listed(self, items: Sequence[dict[str, Any]], owner: str) -> list[dict[str, Any]]:
        """Input items as listed: references shown as the items they name while those are kept."""
        wanted = referenced_ids(items)
        if not wanted:
            return list(items)
        try:
            found, _ = await find_items(self.store, owner, wanted)
        except Exception:
            log.warning("the response store failed", exc_info=True)
            raise store_unavailable() from None
        return [found.get(str(item.get("id")), item) if item.get("type") == "item_reference" else item
                for item in items]

    async def _stored(self, response_id: str, caller: Caller) -> StoredResponse:
        try:
            stored = await get_one(self.store, owner_of(caller), response_id)
        except Exception:
            log.warning("the response store failed", exc_info=True)
            raise store_unavailable() from None
        if stored is None:
            raise missing_response(response_id)
        return stored


def _size_of(items: list[dict[str, Any]], echo: dict[str, Any]) -> int:
    """Bytes the request takes in the store before its answer: its input items and what the body repeats."""
    text = json.dumps([items, echo], ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


__all__ = ["Continuation", "StoredResponses", "broken_chain", "missing_response", "owner_of", "store_unavailable"]
