"""Tenants' JSON-schema regular expressions (a webhook tool's `pattern`s), matched by RE2.

Python's `re` backtracks: a pattern such as `^(a+)+$` against a few dozen characters runs for minutes, on the voice
server's event loop, freezing every call on the replica. RE2 matches in linear time and refuses the constructs that
need backtracking (backreferences, lookaround), so such a pattern is refused when the agent is saved.
`patternProperties` is refused outright: jsonschema matches it with `re` in several places.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import re2
from jsonschema import ValidationError
from jsonschema.protocols import Validator

MAX_PATTERN_CHARS = 1000


def _compile(pattern: str) -> Any:
    options = re2.Options()
    options.max_mem = 8 << 20  # bounds the compiled program too (huge counted repetitions)
    return re2.compile(pattern, options)


def pattern_problem(schema: Any) -> str | None:
    """Why the schema's regular expressions cannot be used, or None."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "patternProperties" and isinstance(value, dict):
                return "patternProperties is not supported; list the properties"
            if key == "pattern" and isinstance(value, str):
                if len(value) > MAX_PATTERN_CHARS:
                    return f"pattern longer than {MAX_PATTERN_CHARS} characters"
                try:
                    _compile(value)
                except re2.error as exc:
                    return f"pattern {value!r} is not supported (RE2 syntax, no backreferences or lookaround): {exc}"
            elif (found := pattern_problem(value)) is not None:
                return found
    elif isinstance(schema, list):
        return next((found for item in schema if (found := pattern_problem(item)) is not None), None)
    return None


def _re2_pattern(validator: Validator, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and _compile(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# Draft 2020-12 with `pattern` matched by RE2 (patternProperties never reaches here: refused when saved).
Re2Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _re2_pattern})
