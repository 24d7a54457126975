"""The context window and output limit of each served model, as `/v1/models` reports them.

Agent clients (Claude Code, Codex, Cline…) size their context compaction from the model list; a list that
says nothing makes them guess. The numbers come from the `model_limits` config section (settings/schema.py): its
defaults are DeepSeek's published API limits, a thinking model gets the larger output limit, and an entry
under `model_limits.models` (by id or alias) overrides either number for that name.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import ModelLimitsSettings
from .turn import ModelSpec


@dataclass(frozen=True, slots=True)
class Limits:
    context_window: int  # tokens of prompt + answer
    max_output_tokens: int  # tokens of one answer (reasoning included)


class ModelLimits:
    """Looks up the limits of a model name (see the module doc)."""

    def __init__(self, settings: ModelLimitsSettings | None = None) -> None:
        self._settings = settings or ModelLimitsSettings()
        self._by_name = {name.lower(): limit for name, limit in self._settings.models.items()}

    def of(self, spec: ModelSpec, name: str | None = None) -> Limits:
        settings = self._settings
        context = settings.context_window
        output = settings.thinking_max_output_tokens if spec.thinking else settings.max_output_tokens
        for key in (spec.id, name):  # the listed name's own entry wins over its model's
            limit = self._by_name.get(key.lower()) if key else None
            if limit is not None:
                context = limit.context_window or context
                output = limit.max_output_tokens or output
        return Limits(context, min(output, context))
