"""Reading the schema itself: which field a key names, its bounds and its choices.

Error messages (errors.py) and the configuration page's table (docs.py) both describe a field
from what its declaration says, so neither restates a range or a list of choices.
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

Loc = tuple[str | int, ...]


def keys(model: type[BaseModel]) -> list[str]:
    """The keys a model reads, as written in the stack file."""
    return [field.alias or name for name, field in model.model_fields.items()]


def section_of(field: FieldInfo) -> type[BaseModel] | None:
    """The model a field holds (through `Annotated` and `| None`), if it holds one."""
    inner = unwrap(field.annotation)
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def locate(schema: type[BaseModel], loc: Loc) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """The model holding the last key of `loc`, and that key's field (None where unknown)."""
    annotation: Any = schema
    model: type[BaseModel] | None = None
    field: FieldInfo | None = None
    for part in loc:
        annotation = unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            field = next((f for n, f in model.model_fields.items() if part in (f.alias, n)), None)
            if field is None:
                return model, None
            annotation = field.annotation
            continue
        args, origin = get_args(annotation), get_origin(annotation)
        if origin in (dict, Mapping) and len(args) == 2:
            annotation = args[1]
        elif origin in (tuple, list, Sequence) and args:
            annotation = args[0]
        else:
            return model, field
        model = None
    return model, field


def unwrap(annotation: Any) -> Any:
    """The type inside `Annotated[...]` and `X | None`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _constraints(field: FieldInfo) -> Iterator[Any]:
    yield from field.metadata
    annotation = field.annotation
    for candidate in [annotation, *get_args(annotation)]:
        if get_origin(candidate) is Annotated:
            for extra in get_args(candidate)[1:]:
                yield extra
                if isinstance(extra, FieldInfo):
                    yield from extra.metadata


def bounds(field: FieldInfo | None) -> tuple[float, float]:
    """The lowest and highest value a number field accepts (infinite where unbounded)."""
    low, high = -math.inf, math.inf
    for constraint in _constraints(field) if field is not None else ():
        if isinstance(constraint, annotated_types.Ge):
            low = float(constraint.ge)  # type: ignore[arg-type]
        elif isinstance(constraint, annotated_types.Le):
            high = float(constraint.le)  # type: ignore[arg-type]
    return low, high


def max_length(field: FieldInfo) -> int | None:
    found = [c.max_length for c in _constraints(field) if isinstance(c, annotated_types.MaxLen)]
    return found[0] if found else None


def choices(field: FieldInfo | None) -> tuple[Any, ...]:
    """The values a `Literal` field accepts."""
    annotation = unwrap(field.annotation) if field is not None else None
    return get_args(annotation) if get_origin(annotation) is Literal else ()
