"""Tool calling emulated over DeepSeek's text-only web chat (docs/tools.md).

One prompt builder (`prompt`), one grammar (`grammar`) and parser (`parser`), one streaming sieve
(`sieve`), one repair step (`repair`, `jsonfix`) and the structured-output checks (`structured`),
shared by every API surface. `spec.py` holds the surface-neutral vocabulary that the surfaces parse
their wire formats into; `events.py` what comes out.
"""
