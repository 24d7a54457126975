"""The `files` section and `upstream.inline_prompt_limit`: safe defaults, one-line errors."""

from __future__ import annotations

import pytest

from deepseek2api.chat.attachments import DEFAULT_MAX_BYTES
from deepseek2api.chat.history_file import DEFAULT_INLINE_PROMPT_LIMIT
from deepseek2api.settings import ConfigError, Settings


def test_defaults_keep_remote_fetch_off_and_match_the_chat_modules():
    settings = Settings.from_dict({})
    assert settings.files.fetch_remote is False
    assert settings.files.history_as_file is True
    assert settings.files.max_bytes == DEFAULT_MAX_BYTES
    assert settings.upstream.inline_prompt_limit == DEFAULT_INLINE_PROMPT_LIMIT
    # a file at the cap still fits the request body limit once base64-encoded
    assert settings.files.max_bytes * 4 // 3 < settings.server.max_body_bytes


def test_the_operator_can_change_them():
    settings = Settings.from_dict({"files": {"fetch_remote": True, "max_bytes": 1000, "max_files": 2},
                                   "upstream": {"inline_prompt_limit": 50_000}})
    assert (settings.files.fetch_remote, settings.files.max_bytes, settings.files.max_files) == (True, 1000, 2)
    assert settings.upstream.inline_prompt_limit == 50_000


@pytest.mark.parametrize(("config", "message"), [
    ({"files": {"max_bytes": 0}}, "files.max_bytes: expected a number > 0 (got 0)"),
    ({"files": {"fetch_remote": "maybe"}}, "files.fetch_remote: expected true or false (got 'maybe')"),
    ({"upstream": {"inline_prompt_limit": 10}}, "upstream.inline_prompt_limit: expected a number >= 1000 (got 10)"),
])
def test_bad_values_fail_with_one_line(config, message):
    with pytest.raises(ConfigError) as caught:
        Settings.from_dict(config)
    assert str(caught.value) == message
