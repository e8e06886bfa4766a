"""Whether a value fits a Bot API type expression ("Integer", "Array of MessageEntity", ...).

Form values are strings to convert (`convert_primitive`); nested JSON is checked field by field
against api.json's types (`TypeChecker`), an abstract type narrowed by its discriminator field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .spec import TypeSpec

__all__ = ["NO", "PRIMITIVES", "TypeChecker", "TypeMismatchError", "convert_primitive"]

PRIMITIVES = ("Integer", "Float", "Boolean", "String")
_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class TypeMismatchError(Exception):
    """A JSON value does not fit a type expression; `shallow` when the kind itself is wrong."""

    def __init__(self, message: str, *, shallow: bool = False, depth: int = 0) -> None:
        super().__init__(message)
        self.shallow = shallow
        self.depth = depth


class TypeChecker:
    """Checks native JSON values against the object types of one spec."""

    def __init__(self, types: Mapping[str, TypeSpec]) -> None:
        self.types = types

    def check_union(self, value: Any, exprs: Iterable[str], path: str, depth: int = 0) -> None:
        """Fit `value` to one of `exprs`, else raise the deepest mismatch (Telegram's wording)."""
        candidates = list(exprs)
        if len(candidates) == 1:
            self.check(value, candidates[0], path, depth)
            return
        candidates = self._narrow(value, candidates, path, depth)
        errors: list[TypeMismatchError] = []
        for expr in candidates:
            try:
                self.check(value, expr, path, depth)
            except TypeMismatchError as exc:
                errors.append(exc)
            else:
                return
        deep = [e for e in errors if not e.shallow]
        if not deep:
            raise TypeMismatchError(
                f'Field "{path}" must be of type {" or ".join(candidates)}',
                shallow=True,
                depth=depth,
            )
        raise max(deep, key=lambda e: e.depth)

    def _narrow(self, value: Any, exprs: list[str], path: str, depth: int) -> list[str]:
        """Keep the subtypes whose discriminator ("type": "chat", ...) matches `value`."""
        if not isinstance(value, dict):
            return exprs
        specs = [self.types.get(e) for e in exprs]
        discriminators = {s.discriminator[0] for s in specs if s and s.discriminator}
        if len(discriminators) != 1 or not all(s and s.discriminator for s in specs):
            return exprs
        key = discriminators.pop()
        if key not in value:
            return exprs
        matching = [
            e
            for e, s in zip(exprs, specs, strict=True)
            if s and s.discriminator and s.discriminator[1] == value[key]
        ]
        if not matching:
            raise TypeMismatchError(
                f'Field "{path}.{key}" has unsupported value {json.dumps(value[key])}',
                depth=depth + 1,
            )
        return matching

    def check(self, value: Any, expr: str, path: str, depth: int) -> None:
        """Fit `value` to the type expression `expr`, else raise TypeMismatchError."""
        if expr.startswith("Array of "):
            if not isinstance(value, list):
                raise TypeMismatchError(
                    f'Field "{path}" must be of type {expr}', shallow=True, depth=depth
                )
            inner = expr.removeprefix("Array of ")
            for index, item in enumerate(value):
                self.check(item, inner, f"{path}[{index}]", depth + 1)
            return
        if expr in PRIMITIVES:
            if not is_json_primitive(expr, value):
                raise TypeMismatchError(
                    f'Field "{path}" must be of type {expr}', shallow=True, depth=depth
                )
            return
        if expr == "InputFile":
            if not isinstance(value, str):
                raise TypeMismatchError(
                    f'Field "{path}" must be of type InputFile', shallow=True, depth=depth
                )
            return
        spec = self.types.get(expr)
        if spec is None:
            return
        if spec.subtypes:
            self.check_union(value, spec.subtypes, path, depth)
            return
        if not isinstance(value, dict):
            raise TypeMismatchError(
                f'Field "{path}" must be of type {expr}', shallow=True, depth=depth
            )
        for field_spec in spec.fields.values():
            sub_path = f"{path}.{field_spec.name}"
            if field_spec.name not in value:
                if field_spec.required:
                    raise TypeMismatchError(f'Can\'t find field "{sub_path}"', depth=depth + 1)
                continue
            self.check_union(value[field_spec.name], field_spec.types, sub_path, depth + 1)


class _Missing:
    pass


NO: Any = _Missing()


def convert_primitive(prim: str, value: Any) -> Any:
    """Convert a form string or JSON scalar to `prim`, or return NO."""
    if isinstance(value, dict | list):
        return NO
    if prim == "Integer":
        if isinstance(value, bool):
            return NO
        if isinstance(value, int):
            return value
        if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
            return int(value)
        return NO
    if prim == "Float":
        if isinstance(value, bool):
            return NO
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
            return float(value)
        return NO
    if prim == "Boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        return NO
    # String: a form value is one; a JSON scalar is stringified as the Bot API server does.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return NO


def is_json_primitive(prim: str, value: Any) -> bool:
    if prim == "Integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if prim == "Float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if prim == "Boolean":
        return isinstance(value, bool)
    return isinstance(value, str)
