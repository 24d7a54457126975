"""The simulator answers tool requests like the real model: it reads the catalog back from the prompt,
writes the call in the chosen markup with arguments that fit the schema, and answers tool results in prose."""

from __future__ import annotations

import json

import jsonschema
import pytest

from deepseek2api.chat.tools.events import OutToolCall, SievedReasoning, SievedText
from deepseek2api.chat.tools.parser import parse_answer
from deepseek2api.chat.tools.prompt import (
    reminder,
    render_calls,
    render_result,
    tools_prompt,
)
from deepseek2api.chat.tools.sieve import ToolStream
from deepseek2api.chat.tools.spec import (
    ToolCallRecord,
    ToolChoice,
    ToolChoiceMode,
    ToolKind,
)
from deepseek2api.simulator import reply_for
from deepseek2api.simulator.toolcalls import MARKUPS, arguments_for, read_catalog
from simulator_support import asgi_client, complete, login, new_session, sse_events
from tools_support import NESTED, TOOLS

ALL = (*TOOLS, NESTED)
SYSTEM = tools_prompt(ALL) or ""


def prompt_for(user: str, choice: ToolChoice | None = None) -> str:
    return SYSTEM + "<｜User｜>" + user + "\n" + (reminder(ALL, choice or ToolChoice()) or "")


def schema_of(name: str) -> dict[str, object]:
    return dict(next(t for t in ALL if t.name == name).parameters)


def test_the_catalog_is_read_back_from_the_gateway_prompt_and_synthesised_arguments_validate() -> None:
    catalog = read_catalog(SYSTEM)
    assert sorted(catalog) == sorted(t.name for t in ALL)
    assert catalog["apply_patch"].freeform
    for tool in ALL:
        if tool.kind is ToolKind.FUNCTION:
            jsonschema.validate(arguments_for(catalog[tool.name]), dict(tool.parameters))


def test_naming_a_tool_in_the_last_user_message_gets_a_call() -> None:
    reply = reply_for(prompt_for("What is the weather? Use get_weather please."), thinking=False, search=False)
    result = parse_answer(reply.content, ALL)
    assert [c.name for c in result.calls] == ["get_weather"]
    jsonschema.validate(json.loads(result.calls[0].arguments), schema_of("get_weather"))


def test_a_message_naming_no_tool_gets_the_usual_echo() -> None:
    reply = reply_for(prompt_for("Hello there"), thinking=False, search=False)
    assert "Hello there" in reply.content and parse_answer(reply.content, ALL).calls == ()


@pytest.mark.parametrize("markup", MARKUPS)
def test_every_markup_parses_into_the_directed_call(markup: str) -> None:
    directive = f'[sim:tool=search args={{"query": "a]b <&> \\"q\\"", "tags": ["x"]}} markup={markup}]'
    reply = reply_for(prompt_for("Find it " + directive), thinking=False, search=False)
    result = parse_answer(reply.content, ALL)
    assert [(c.name, json.loads(c.arguments)) for c in result.calls] == \
        [("search", {"query": 'a]b <&> "q"', "tags": ["x"]})]
    assert "invented result" not in result.text
    if markup == "fenced":
        assert "```\n<|DSML|tool_calls>" in result.text


def test_parallel_calls_from_one_directive() -> None:
    reply = reply_for(prompt_for("[sim:tool=get_weather,search markup=v4]"), thinking=False, search=False)
    assert [c.name for c in parse_answer(reply.content, ALL).calls] == ["get_weather", "search"]


def test_a_named_tool_choice_reminder_is_enough_to_get_that_call() -> None:
    reply = reply_for(prompt_for("do it", ToolChoice(ToolChoiceMode.NAMED, "book")), thinking=False, search=False)
    (call,) = parse_answer(reply.content, ALL).calls
    assert call.name == "book"
    jsonschema.validate(json.loads(call.arguments), schema_of("book"))


def test_after_a_tool_result_the_answer_is_prose_that_uses_the_result() -> None:
    history = (prompt_for("Weather in Paris? [sim:tool=get_weather]") + "<｜Assistant｜>"
               + render_calls([ToolCallRecord("call_1", "get_weather", '{"city": "Paris"}')], ALL)
               + "<｜end▁of▁sentence｜>" + render_result("call_1", "get_weather", "Sunny, 24 degrees"))
    reply = reply_for(history, thinking=True, search=False)
    assert "Sunny, 24 degrees" in reply.content and "get_weather" in reply.content
    assert parse_answer(reply.content, ALL).calls == ()
    assert reply.reasoning


def test_a_thinking_model_can_put_the_call_in_its_reasoning() -> None:
    reply = reply_for(prompt_for("[sim:tool=get_weather] [sim:tool_in=reasoning]"), thinking=True, search=False)
    assert reply.content == ""
    stream = ToolStream(ALL)
    events = [e for ch in reply.reasoning for e in stream.reasoning(ch)] + stream.content("") + stream.finish()
    assert [e.name for e in events if isinstance(e, OutToolCall)] == ["get_weather"]
    assert "DSML" not in "".join(e.text for e in events if isinstance(e, SievedReasoning))


@pytest.mark.parametrize("split", ["1", "random"])
@pytest.mark.parametrize("markup", [m for m in MARKUPS if m != "fenced"])
async def test_streamed_in_small_pieces_the_sieve_recovers_the_call(markup: str, split: str) -> None:
    prompt = prompt_for(f"[sim:tool=write_file args={{\"path\": \"a.py\", \"content\": \"x < 1\\n\"}} "
                        f"markup={markup}] [sim:split={split}]")
    async with asgi_client() as client:
        token = await login(client)
        r = await complete(client, token, await new_session(client, token), prompt, headers={"x-sim-format": "A"})
    pieces = [data["choices"][0]["delta"]["content"] for name, data in sse_events(r.content)
              if name == "message" and isinstance(data, dict) and data["choices"][0]["delta"].get("type") == "text"]
    pieces = [p for p in pieces if p]
    assert pieces and all(len(p) <= (1 if split == "1" else 6) for p in pieces)
    stream = ToolStream(ALL)
    events = [e for p in pieces for e in stream.content(p)] + stream.finish()
    calls = [e for e in events if isinstance(e, OutToolCall)]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("write_file", {"path": "a.py", "content": "x < 1\n"})]
    text = "".join(e.text for e in events if isinstance(e, SievedText))
    assert "DSML" not in text and "tool▁" not in text and "invented" not in text


def test_an_after_directive_scripts_a_second_call_once_the_first_result_is_in() -> None:
    task = 'Weather, then search. [sim:tool=get_weather args={"city": "Oslo"}] [sim:after1=search args={"query": "umbrella"}]'
    first = parse_answer(reply_for(prompt_for(task), thinking=False, search=False).content, ALL).calls
    assert [(c.name, json.loads(c.arguments)["city"]) for c in first] == [("get_weather", "Oslo")]
    history = (prompt_for(task) + "<｜Assistant｜>" + render_calls([ToolCallRecord("call_1", "get_weather", '{"city": "Oslo"}')], ALL)
               + "<｜end▁of▁sentence｜>" + render_result("call_1", "get_weather", "Rain"))
    (second,) = parse_answer(reply_for(history, thinking=False, search=False).content, ALL).calls
    assert (second.name, json.loads(second.arguments)["query"]) == ("search", "umbrella")
    history += ("<｜Assistant｜>" + render_calls([ToolCallRecord("call_2", "search", '{"query": "umbrella"}')], ALL)
                + "<｜end▁of▁sentence｜>" + render_result("call_2", "search", "Buy one"))
    final = reply_for(history, thinking=False, search=False).content
    assert "Buy one" in final and parse_answer(final, ALL).calls == ()
