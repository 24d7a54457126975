"""`python -m deepseek2api …` — the same CLI as the `deepseek2api` console script."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
