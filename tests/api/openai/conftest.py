"""Shared fixtures of the OpenAI Chat Completions tests: a gateway whose every exchange is checked against OpenAI's schemas."""

from __future__ import annotations

from conformance_support import checked_stack, openai_schemas

__all__ = ["checked_stack", "openai_schemas"]  # fixtures: `stack` (module scope) and `openai_schemas`
