"""docs/configuration.md's key table, generated from the schema (`make docs` rewrites it).

tests/test_readme.py fails when the page and the schema disagree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components.config.fields import bounds, choices, max_length, section_of
from components.config.stack import StackConfig
from components.contract import SET_BY_PROGRAM

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION_PAGE = ROOT / "docs" / "configuration.md"
BEGIN = "<!-- config-table: generated from components/config/ by `make docs`; edit it there -->"
END = "<!-- end of config-table -->"


def rows() -> Iterator[tuple[str, FieldInfo]]:
    """Every key with its field: `key` for plain values, `section.key` inside a section."""
    for name, field in StackConfig.model_fields.items():
        key = field.alias or name
        section = section_of(field)
        if section is None:
            yield key, field
            continue
        for sub_name, sub_field in section.model_fields.items():
            yield f"{key}.{sub_field.alias or sub_name}", sub_field


def config_table() -> str:
    """The key table, then the variables a stack may not set because the program does."""
    lines = ["| Key | Default | Meaning |", "|---|---|---|"]
    lines += [f"| `{key}` | {_default(field)} | {_meaning(field)} |" for key, field in rows()]
    managed = ", ".join(f"`{name}`" for name in SET_BY_PROGRAM)
    lines += [
        "",
        f"Set by the program, not by you (naming them in `environment` is an error): {managed}.",
    ]
    return "\n".join(lines)


def _default(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "shown_default" in extra:
        return str(extra["shown_default"])
    if field.default is PydanticUndefined:
        return "**required**"
    value = field.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (tuple, dict)):
        return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"
    return f"`{value}`"


def _meaning(field: FieldInfo) -> str:
    parts = [field.description or ""]
    low, high = bounds(field)
    if math.isfinite(low) and math.isfinite(high):
        parts.append(f"{low:g}\N{EN DASH}{high:g}")
    elif math.isfinite(low):
        parts.append(f"≥ {low:g}")
    if choices(field):
        parts.append("one of " + ", ".join(f"`{c}`" for c in choices(field)))
    if max_length(field) is not None:
        parts.append(f"at most {max_length(field)}")
    if field.examples:
        parts.append(f"e.g. `{field.examples[0]}`")
    return "; ".join(p for p in parts if p)


def with_table(page: str) -> str:
    """`page` with the text between the markers replaced by the current table."""
    head, found, rest = page.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        msg = f"{CONFIGURATION_PAGE.name} lacks the markers {BEGIN!r} ... {END!r}"
        raise SystemExit(msg)
    return f"{head}{BEGIN}\n{config_table()}\n{END}{tail}"


def main() -> None:
    """Rewrite the table and say what changed, so `make docs` is never silent."""
    before = CONFIGURATION_PAGE.read_text()
    after = with_table(before)
    where = CONFIGURATION_PAGE.relative_to(ROOT)
    if after == before:
        print(f"{where}: the configuration table is up to date ({len(list(rows()))} keys)")
        return
    CONFIGURATION_PAGE.write_text(after)
    print(f"{where}: rewrote the configuration table ({len(list(rows()))} keys)")


if __name__ == "__main__":
    main()
