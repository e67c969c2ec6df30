"""`environment`: LibreChat's plain variables, minus the ones Lambda or this program sets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator

from components import aws_rules
from components.config.base import Problem, TextMap, problems_error
from components.contract import SET_BY_PROGRAM


def variable_problem(name: str) -> str | None:
    """Why `name` cannot be a variable of the function's environment, or None."""
    try:
        aws_rules.check_env_name(name)
    except ValueError as exc:
        return str(exc)
    if name in aws_rules.LAMBDA_RESERVED_ENV:
        return "is reserved by Lambda; remove it"
    if name in SET_BY_PROGRAM:
        source = SET_BY_PROGRAM[name]
        if source is None:
            return "is set by this program (the image and the runtime rely on it); remove it"
        return f"is set by this program from {source}; set that instead"
    return None


def _check(environment: Mapping[str, str]) -> Mapping[str, str]:
    # Values are never quoted back: an environment set with --secret may hold credentials.
    problems: list[Problem] = []
    for name, value in environment.items():
        problem = variable_problem(name)
        if problem is None and name in ("DOMAIN_SERVER", "DOMAIN_CLIENT"):
            problem = _rule_problem(
                aws_rules.check_url, value, "is not a URL (https://host[/path])"
            )
        if problem is None and name == "AWS_BUCKET_NAME":
            problem = _rule_problem(aws_rules.check_bucket, value, "is not an S3 bucket name")
        if problem is not None:
            problems.append((name, problem))
    if problems:
        raise problems_error(problems)
    return environment


def _rule_problem(check: aws_rules.Check, value: str, sentence: str) -> str | None:
    try:
        check(value)
    except ValueError:
        return sentence
    return None


Environment = Annotated[TextMap, AfterValidator(_check)]
