"""Validation errors as sentences, each naming its key the way `pulumi config set --path` does."""

from __future__ import annotations

import re
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from components.config.base import unknown_key
from components.config.fields import bounds, choices, keys, locate

Loc = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r'^[^.\[\]"\s]+$')
#: Values under these keys are never quoted back (an environment set with --secret).
_UNQUOTED = frozenset({"environment"})


class ConfigError(pulumi.RunError):
    """The stack configuration is wrong; the message lists every problem by key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"Stack configuration has {count}:\n{lines}")


def key_path(loc: Loc) -> str:
    """`function.memoryMb`, `network.subnetIds[0]`, `tags["a b"]`: the CLI's --path spelling."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            path += f".{part}" if path else part
        else:
            path += f'["{part}"]'
    return path


def problems_of(error: ValidationError, schema: type[BaseModel]) -> list[str]:
    """One `key sentence` line per problem in `error`, in the order pydantic found them."""
    lines: list[str] = []
    for detail in error.errors(include_url=False):
        loc: Loc = tuple(detail["loc"])
        if detail["type"] == "problems":
            for key, sentence in detail.get("ctx", {})["problems"]:
                below: Loc = tuple(key.split(".")) if key else ()
                lines.append(_line(loc + below, sentence))
        else:
            lines.append(_line(loc, _sentence(detail, loc, schema)))
    return lines


def _line(loc: Loc, sentence: str) -> str:
    return f"{key_path(loc)} {sentence}"


def _sentence(detail: ErrorDetails, loc: Loc, schema: type[BaseModel]) -> str:
    kind, ctx = detail["type"], detail.get("ctx", {})
    given = "" if loc[:1] and loc[0] in _UNQUOTED else f", not {_show(detail['input'])}"
    model, field = locate(schema, loc)
    if kind == "missing":
        return _missing(model, field, loc)
    if kind == "extra_forbidden" and model is not None:
        return unknown_key(str(loc[-1]), keys(model))
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        low, high = bounds(field)
        return f"is {_show(detail['input'])}; use a value from {low:g} to {high:g}"
    if kind == "literal_error":
        allowed = ", ".join(str(c) for c in choices(field))
        return f"is {_show(detail['input'])}; use one of {allowed}"
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "too_long":
        return f"holds {ctx['actual_length']} entries; Lambda accepts at most {ctx['max_length']}"
    sentences = {
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "int_type": "must be a whole number",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
        "string_type": "must be a string",
        "string_too_short": "must not be empty",
        "model_type": "must be a map of settings",
        "model_attributes_type": "must be a map of settings",
        "dict_type": "must be a map of names to values",
        "mapping_type": "must be a map of names to values",
        "list_type": "must be a list",
        "tuple_type": "must be a list",
    }
    if kind in sentences:
        return sentences[kind] + given
    return detail["msg"]


def _missing(model: type[BaseModel] | None, field: FieldInfo | None, loc: Loc) -> str:
    sentence = "is required"
    if field is not None and field.description:
        sentence += f": {field.description}"
    if field is not None and field.examples:
        sentence += f", e.g. {field.examples[0]}"
    if model is not None and "enabled" in model.model_fields and loc[:-1]:
        sentence += f"; or set {key_path(loc[:-1])}.enabled: false"
    return sentence


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["ConfigError", "key_path", "problems_of"]
