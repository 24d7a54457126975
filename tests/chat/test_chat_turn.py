"""Model registry, aliases and per-request thinking/search overrides."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from deepseek2api.api.openai.protocol import apply_overrides, stop_sequences
from deepseek2api.chat.turn import ModelRegistry, ModelSpec
from deepseek2api.settings import Settings

BUILTINS = {
    # id: (model_type, thinking, search, aliases)
    "deepseek-chat": ("default", False, False, {"deepseek-v3", "deepseek-v4-flash"}),
    "deepseek-reasoner": ("default", True, False, {"deepseek-r1"}),
    "deepseek-chat-search": ("default", False, True, {"deepseek-v3-search"}),
    "deepseek-reasoner-search": ("default", True, True, {"deepseek-r1-search"}),
    "deepseek-expert-chat": ("expert", False, False, {"deepseek-v4-pro"}),
    "deepseek-expert-reasoner": ("expert", True, False, set()),
    "deepseek-expert-chat-search": ("expert", False, True, set()),
    "deepseek-expert-reasoner-search": ("expert", True, True, set()),
}


@pytest.mark.parametrize("model_id", sorted(BUILTINS))
def test_builtin_models_have_the_documented_switches(model_id: str) -> None:
    model_type, thinking, search, aliases = BUILTINS[model_id]
    registry = ModelRegistry()
    spec = registry.resolve(model_id)
    assert spec is not None
    assert (spec.id, spec.model_type, spec.thinking, spec.search) == (model_id, model_type, thinking, search)
    assert aliases <= set(spec.aliases)
    for alias in aliases:
        assert registry.resolve(alias) is spec


@pytest.mark.parametrize("name", ["DeepSeek-Chat", "DEEPSEEK-R1", " deepseek-v4-pro ", "Deepseek-V3-Search"])
def test_resolve_is_case_insensitive_for_ids_and_aliases(name: str) -> None:
    assert ModelRegistry().resolve(name) is not None


@pytest.mark.parametrize("name", ["gpt-4o", "", "deepseek", "deepseek-chat-x"])
def test_unknown_names_resolve_to_none(name: str) -> None:
    assert ModelRegistry().resolve(name) is None


def test_resolve_rejects_non_strings() -> None:
    assert ModelRegistry().resolve(None) is None  # type: ignore[arg-type]


def test_listed_keeps_legacy_names_first_and_names_include_aliases() -> None:
    registry = ModelRegistry()
    listed = [spec.id for spec in registry.listed()]
    assert listed[:2] == ["deepseek-chat", "deepseek-reasoner"]
    assert set(BUILTINS) <= set(listed)
    names = [name for name, _ in registry.names()]
    assert names.index("deepseek-chat") < names.index("deepseek-v3") < names.index("deepseek-reasoner")
    assert {"deepseek-v4-flash", "deepseek-v4-pro", "deepseek-r1-search"} <= set(names)
    assert len(names) == len(set(names))


def test_config_models_add_ids_and_aliases() -> None:
    registry = ModelRegistry(
        {
            "my-thinker": {"model_type": "expert", "thinking": True, "search": False, "aliases": ["mt"]},
            "bare": {},
            "as-object": SimpleNamespace(model_type="default", thinking=False, search=True),
        }
    )
    thinker = registry.resolve("MY-THINKER")
    assert thinker == ModelSpec("my-thinker", "expert", True, False, ("mt",))
    assert registry.resolve("mt") is thinker
    assert registry.resolve("bare") == ModelSpec("bare", "default", False, False)
    assert registry.resolve("as-object") == ModelSpec("as-object", "default", False, True)
    assert [s.id for s in registry.listed()][-3:] == ["my-thinker", "bare", "as-object"]
    assert registry.resolve("deepseek-chat") is not None  # built-ins stay


def test_aliases_set_in_the_config_file_are_served() -> None:
    settings = Settings.model_validate({"models": {"team-model": {"model_type": "expert", "aliases": ["tm", "TeamM"]},
                                                   "solo": {"aliases": "one-name"}}})
    registry = ModelRegistry(settings.models)
    assert registry.resolve("tm") is registry.resolve("teamm") is registry.resolve("team-model")
    assert registry.resolve("tm") == ModelSpec("team-model", "expert", False, False, ("tm", "TeamM"))
    assert registry.resolve("one-name") == ModelSpec("solo", "default", False, False, ("one-name",))


def test_config_entry_replaces_a_builtin_id_or_alias() -> None:
    registry = ModelRegistry(
        {"deepseek-chat": {"thinking": True}, "deepseek-r1": {"model_type": "expert", "thinking": True}}
    )
    assert registry.resolve("deepseek-chat").thinking is True
    assert registry.resolve("deepseek-r1").model_type == "expert"  # the id wins over the alias
    assert registry.resolve("deepseek-reasoner").model_type == "default"
    names = [name for name, _ in registry.names()]
    assert names.count("deepseek-r1") == 1


CHAT = ModelSpec("deepseek-chat", "default", False, False)
REASONER = ModelSpec("deepseek-reasoner", "default", True, False)


@pytest.mark.parametrize(
    ("spec", "body", "thinking", "search"),
    [
        (CHAT, {}, False, False),
        (REASONER, {}, True, False),
        (CHAT, {"thinking": {"type": "enabled"}}, True, False),
        (REASONER, {"thinking": {"type": "disabled"}}, False, False),
        (REASONER, {"thinking": {"type": "DISABLED", "budget_tokens": 10}}, False, False),
        (CHAT, {"thinking": True}, True, False),
        (REASONER, {"thinking": False}, False, False),
        (REASONER, {"reasoning_effort": "none"}, False, False),
        (REASONER, {"reasoning_effort": "high"}, True, False),
        (CHAT, {"reasoning_effort": "high"}, False, False),  # effort alone does not switch thinking on
        (CHAT, {"thinking": {"type": "enabled"}, "reasoning_effort": "none"}, True, False),  # object wins
        (CHAT, {"web_search_options": {}}, False, True),
        (CHAT, {"web_search_options": None}, False, False),
        (REASONER, {"thinking": {"type": "auto"}}, True, False),  # unknown type: model default
    ],
)
def test_apply_overrides(spec: ModelSpec, body: dict, thinking: bool, search: bool) -> None:
    result = apply_overrides(spec, body)
    assert (result.thinking, result.search) == (thinking, search)
    assert (result.id, result.model_type) == (spec.id, spec.model_type)


def test_apply_overrides_returns_the_same_spec_when_nothing_changes() -> None:
    assert apply_overrides(REASONER, {"thinking": {"type": "enabled"}}) is REASONER


@pytest.mark.parametrize(
    ("stop", "expected"),
    [(None, ()), ("", ()), ("END", ("END",)), (["a", "", "b"], ("a", "b")), ([], ())],
)
def test_stop_sequences(stop, expected) -> None:
    assert stop_sequences(stop) == expected
