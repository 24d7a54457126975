"""Tool calling emulated over DeepSeek's text-only web chat (AGENTS.md §4, §5, §7).

One prompt builder, one parser, one streaming sieve and one repair step, shared by every API surface.
`spec.py` holds the surface-neutral vocabulary that the surfaces parse their wire formats into.
"""
