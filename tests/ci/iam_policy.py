"""A small IAM policy evaluator, enough to prove what the CI roles' policies allow and deny.

It follows IAM's documented order for identity policies: an explicit Deny wins, then an Allow,
else the request is implicitly denied. Actions match case-insensitively with `*` and `?`,
resources case-sensitively; `NotAction` matches every action the list does not. Conditions
support the operators the CI policies use: StringEquals / StringLike / StringNotEquals (true
when the key is absent, as in IAM), Null, with the ForAllValues qualifier (true when the key is
absent) and ForAnyValue (false when it is absent) for multivalued keys. A permissions boundary
(`decide(..., boundary=...)`) must allow a request too, as in IAM.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any, Literal

Decision = Literal["Allow", "Deny", "ImplicitDeny"]
#: What AWS's AdministratorAccess grants: used to show a Deny holds whatever else is attached.
ALLOW_EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _action_matches(patterns: Iterable[str], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


def _resource_matches(patterns: Iterable[str], resource: str) -> bool:
    return any(fnmatch.fnmatchcase(resource, p) for p in patterns)


def _values_match(operator: str, wanted: list[str], value: str) -> bool:
    if operator == "StringNotEquals":
        return value not in wanted
    if operator == "StringEquals":
        return value in wanted
    if operator == "StringLike":
        return any(fnmatch.fnmatchcase(value, w) for w in wanted)
    raise ValueError(f"operator {operator} is not supported by this evaluator")


def _conditions_hold(
    condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any]
) -> bool:
    for qualified, keys in condition.items():
        qualifier, _, operator = qualified.rpartition(":")
        for key, expected in keys.items():
            present = context.get(key)
            wanted = [str(w) for w in _list(expected)]
            if operator == "Null":
                if (present is None) != (wanted == ["true"]):
                    return False
                continue
            if qualifier == "ForAnyValue":
                if present is None or not any(
                    _values_match(operator, wanted, str(v)) for v in _list(present)
                ):
                    return False
            elif qualifier == "ForAllValues":
                if present is None:
                    continue  # vacuously true, as in IAM
                if not all(_values_match(operator, wanted, str(v)) for v in _list(present)):
                    return False
            elif qualifier == "":
                if present is None and operator == "StringNotEquals":
                    continue  # a negated operator holds when the key is absent
                if present is None or isinstance(present, list):
                    return False
                if not _values_match(operator, wanted, str(present)):
                    return False
            else:
                raise ValueError(f"qualifier {qualifier} is not supported by this evaluator")
    return True


def _applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, Any]
) -> bool:
    if "Action" in statement:
        if not _action_matches(_list(statement["Action"]), action):
            return False
    elif _action_matches(_list(statement["NotAction"]), action):
        return False
    if not _resource_matches(_list(statement.get("Resource", "*")), resource):
        return False
    return _conditions_hold(statement.get("Condition", {}), context)


def decide(
    policies: Iterable[Mapping[str, Any]],
    action: str,
    resource: str = "*",
    context: Mapping[str, Any] | None = None,
    boundary: Mapping[str, Any] | None = None,
) -> Decision:
    """IAM's decision for one request against a principal's identity policies (and its
    permissions boundary, which must allow the request as well)."""
    context = context or {}
    if boundary is not None and decide([boundary], action, resource, context) != "Allow":
        return "ImplicitDeny"
    statements = [s for p in policies for s in p["Statement"]]
    matching = [s for s in statements if _applies(s, action, resource, context)]
    if any(s["Effect"] == "Deny" for s in matching):
        return "Deny"
    if any(s["Effect"] == "Allow" for s in matching):
        return "Allow"
    return "ImplicitDeny"


def actions_of(policy: Mapping[str, Any]) -> list[str]:
    """Every action or NotAction entry named in the policy."""
    found: list[str] = []
    for statement in policy["Statement"]:
        found += _list(statement.get("Action", [])) + _list(statement.get("NotAction", []))
    return found
