"""What the simulator answers with no directive when a prompt offers tools or demands JSON, so the demo
shows tool calls and structured output with the README's examples as printed.

- Tools offered and the user's question names what a tool is about (a word of its name, e.g. "What's
  the weather in Paris?" and `get_weather`): that best-matching tool is called, its
  required arguments built from the catalog — a string parameter gets the question's proper noun
  ("Paris") when there is one.
- A JSON answer demanded (the gateway's "Answer with one JSON object…" instruction): a JSON instance of
  the schema given with it (or `{"answer": …}` without one).

Read from the prompt text only, like the rest of the simulator (it imports nothing of the gateway).
"""

from __future__ import annotations

import json
import re
from typing import Any

_JSON_HEAD = "Answer with one JSON object and nothing else"
_SCHEMA_HEAD = "valid against this JSON Schema"
_CATALOG_HEAD = "## Available tools"
_WORDS = re.compile(r"[A-Za-z][A-Za-z0-9]+")
_PROPER = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]{2,}(?:\s[A-Z][a-z]{2,})*)")
_STOP = frozenset({
    "a", "an", "and", "are", "at", "be", "can", "could", "do", "does", "for", "from", "get", "give", "how", "i",
    "in", "into", "is", "it", "its", "me", "my", "of", "on", "please", "show", "tell", "that", "the", "this", "to",
    "use", "what", "whats", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
})


def _stems(text: str) -> set[str]:
    """Lower-case content words of `text` (snake_case and camelCase split, a plural "s" dropped)."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).replace("_", " ")
    words = {w.lower() for w in _WORDS.findall(spaced)}
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in _STOP}


def catalog_texts(prompt: str) -> dict[str, str]:
    """Each catalogued tool's name → its heading, description and parameter lines (the words it matches)."""
    start = prompt.rfind(_CATALOG_HEAD)
    if start < 0:
        return {}
    section = prompt[start + len(_CATALOG_HEAD):]
    cut = section.find("<｜")
    if cut >= 0:
        section = section[:cut]
    tools: dict[str, str] = {}
    for chunk in re.split(r"(?m)^### ", section)[1:]:
        head, _, rest = chunk.partition("\n")
        name = head.split()[0] if head.split() else ""
        if name:
            params = " ".join(line[2:].split(" (", 1)[0] for line in rest.splitlines() if line.startswith("- "))
            prose = " ".join(line for line in rest.splitlines() if line and not line.startswith("- "))
            tools[name] = f"{name} {prose} {params}"
    return tools


def best_tool(prompt: str, question: str) -> str | None:
    """The catalogued tool whose name shares a word with the question ("weather" for `get_weather`); among
    several, the one sharing most words in its name, then in its description and parameters."""
    asked = _stems(question)
    best, score = None, 0
    for name, text in catalog_texts(prompt).items():
        named = len(asked & _stems(name))
        points = 1000 * named + len(asked & _stems(text)) if named else 0
        if points > score:
            best, score = name, points
    return best


def proper_noun(question: str) -> str | None:
    """The first capitalised word (or run of them) that does not start a sentence: "Paris", "New York"."""
    match = _PROPER.search(question.strip())
    return match.group(1) if match else None


def json_instruction(prompt: str) -> tuple[bool, dict[str, Any] | None]:
    """(a JSON answer is demanded, its schema when given) from the prompt's instruction."""
    at = prompt.rfind(_JSON_HEAD)
    if at < 0:
        return False, None
    colon = prompt.find(":\n", prompt.find(_SCHEMA_HEAD, at)) if _SCHEMA_HEAD in prompt[at:at + 400] else -1
    if colon < 0:
        return True, None
    try:
        schema, _ = json.JSONDecoder().raw_decode(prompt, colon + 2)
    except ValueError:
        return True, None
    return True, schema if isinstance(schema, dict) else None


def instance_of(schema: Any, root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A small JSON value valid against `schema` (types, properties, required, enum, const, items,
    `$ref` to `$defs`, anyOf/oneOf, minimum, minItems, minLength)."""
    root = root if root is not None else (schema if isinstance(schema, dict) else {})
    if not isinstance(schema, dict) or depth > 8:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return instance_of(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return instance_of(options[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else ("array" if "items" in schema else "string")
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        return {name: instance_of(sub, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 1))
        return [instance_of(schema.get("items", {}), root, depth + 1) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", 1) if isinstance(schema.get("minimum"), (int, float)) else 1)
    if kind == "number":
        return float(schema.get("minimum", 1.5) if isinstance(schema.get("minimum"), (int, float)) else 1.5)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = "simulated value"
    minimum = schema.get("minLength")
    return text.ljust(minimum, ".") if isinstance(minimum, int) else text


def json_answer(prompt: str, excerpt: str) -> str | None:
    """The answer to a prompt demanding JSON (None when it demands none)."""
    demanded, schema = json_instruction(prompt)
    if not demanded:
        return None
    value = instance_of(schema) if schema is not None else {"answer": excerpt}
    return json.dumps(value, ensure_ascii=False)
