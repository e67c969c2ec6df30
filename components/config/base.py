"""What every configuration section shares: the base model and the common value types."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components import aws_rules

#: A problem found by a check that spans keys: (key below the checked value, sentence).
Problem = tuple[str, str]


def problems_error(problems: Iterable[Problem]) -> PydanticCustomError:
    """One validation error that carries several problems, each under its own key."""
    found = list(problems)
    return PydanticCustomError(
        "problems", "{count} problems", {"count": len(found), "problems": found}
    )


def unknown_key(key: str, known: Iterable[str]) -> str:
    """The sentence for a key nothing reads, with the closest known key when there is one."""
    known = sorted(known)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"is not a known key; did you mean {close[0]}?"
    return f"is not a known key; known keys here: {', '.join(known)}"


class Section(BaseModel):
    """A block of settings: camelCase keys only, unknown keys rejected, read-only once read.

    Checks that involve several keys go in `related_problems`; they run once every key of the
    section is valid, and each problem names its own key.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,
    )

    def related_problems(self) -> Iterable[Problem]:
        return ()

    @model_validator(mode="after")
    def _check_related(self) -> Self:
        found = list(self.related_problems())
        if found:
            raise problems_error(found)
        return self


def switchable(section: type[Section]) -> BeforeValidator:
    """A section that `enabled: false` switches off: it then reads as None, its keys unused."""
    keys = {field.alias or name for name, field in section.model_fields.items()}

    def switch(value: Any) -> Any:
        if not isinstance(value, Mapping) or "enabled" not in value:
            return value
        try:
            enabled = TypeAdapter(bool).validate_python(value["enabled"])
        except ValidationError:
            return value  # the section reports the malformed switch
        if enabled:
            return value
        unknown = [(str(key), unknown_key(str(key), keys)) for key in value if key not in keys]
        if unknown:
            raise problems_error(unknown)
        return None

    return BeforeValidator(switch)


def _text(value: Any) -> Any:
    """YAML scalars as the variable text they stand for (true -> "true", 3 -> "3")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def rule(check: Callable[[Any], Any]) -> AfterValidator:
    """A `components.aws_rules` rule applied to a value."""
    return AfterValidator(check)


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: Names to values, e.g. tags; YAML numbers and booleans become their text.
TextMap = Mapping[str, Annotated[str, BeforeValidator(_text)]]
#: A list of names; a single name is a list of one.
Names = Annotated[tuple[Text, ...], BeforeValidator(_one_or_many)]
Retention = Annotated[int, rule(aws_rules.check_retention)]
