"""The Bot API's machine-readable spec (api.json) and parameter decoding against it.

Parameters reach the Bot API as strings (query string, url-encoded or multipart form, where
non-string values are JSON-encoded, as python-telegram-bot sends them) or as native JSON values
(an application/json body). `ApiSpec.decode_params` turns them into Python values according to the
declared `types` of each field and refuses what Telegram would refuse with the 400 it would answer.
How a value is checked against a type expression is typecheck.py's business.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .typecheck import NO, PRIMITIVES, TypeChecker, TypeMismatchError, convert_primitive

__all__ = [
    "DEFAULT_SPEC_PATH",
    "ApiError",
    "ApiSpec",
    "FieldSpec",
    "MethodSpec",
    "TypeSpec",
    "UploadedFile",
    "load_spec",
]

# A copy lives beside this file (see data/README.md) so a clone is self-contained.
DEFAULT_SPEC_PATH = Path(
    os.environ.get("TG_API_SPEC") or Path(__file__).with_name("data") / "api.json"
)

_DISCRIMINATOR_RE = re.compile(r'(?:always|must be) "?([a-z_]+)"?$')
_DISCRIMINATOR_FIELDS = ("type", "status", "source")

# Telegram's own wordings for a missing required parameter, where known.
_MISSING: dict[tuple[str, str], str] = {
    ("*", "chat_id"): "Bad Request: chat_id is empty",
    ("*", "message_id"): "Bad Request: message identifier is not specified",
    ("sendMessage", "text"): "Bad Request: message text is empty",
    ("editMessageText", "text"): "Bad Request: message text is empty",
    ("answerCallbackQuery", "callback_query_id"): "Bad Request: QUERY_ID_INVALID",
}
# Fields whose empty string is a meaningful value rather than "missing".
_EMPTY_ALLOWED = frozenset({("setWebhook", "url")})
# How Telegram names an unparsable JSON parameter in "can't parse ... JSON object".
_JSON_WHAT = {
    "reply_markup": "reply keyboard markup",
    "entities": "entities",
    "caption_entities": "entities",
}


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart/form-data request."""

    filename: str
    content: bytes
    content_type: str


class ApiError(Exception):
    """A Bot API error answer: HTTP status, description and optional ResponseParameters."""

    def __init__(
        self, status: int, description: str, parameters: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = dict(parameters) if parameters else None

    def body(self) -> dict[str, Any]:
        """The JSON body Telegram answers with."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass(frozen=True)
class FieldSpec:
    """One parameter of a method or field of a type."""

    name: str
    types: tuple[str, ...]
    required: bool
    description: str = ""


@dataclass(frozen=True)
class TypeSpec:
    """An object type; abstract ones list `subtypes` (type expressions) instead of fields."""

    name: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    subtypes: tuple[str, ...] = ()
    discriminator: tuple[str, str] | None = None  # e.g. ("type", "chat") for BotCommandScopeChat


@dataclass(frozen=True)
class MethodSpec:
    """A Bot API method."""

    name: str
    fields: dict[str, FieldSpec]
    returns: tuple[str, ...]


def _fields(raw: Iterable[Mapping[str, Any]]) -> dict[str, FieldSpec]:
    return {
        f["name"]: FieldSpec(
            f["name"], tuple(f["types"]), bool(f.get("required")), f.get("description", "")
        )
        for f in raw
    }


def _discriminator(fields: Mapping[str, FieldSpec]) -> tuple[str, str] | None:
    for name in _DISCRIMINATOR_FIELDS:
        spec = fields.get(name)
        if spec is not None and spec.types == ("String",):
            match = _DISCRIMINATOR_RE.search(spec.description.strip())
            if match:
                return name, match.group(1)
    return None


class ApiSpec:
    """Methods and types of the Bot API, with case-insensitive method lookup."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.version: str = data.get("version", "")
        self.release_date: str = data.get("release_date", "")
        self.types: dict[str, TypeSpec] = {}
        for name, raw in data["types"].items():
            fields = _fields(raw.get("fields", []))
            self.types[name] = TypeSpec(
                name, fields, tuple(raw.get("subtypes", [])), _discriminator(fields)
            )
        self.methods: dict[str, MethodSpec] = {
            name: MethodSpec(name, _fields(raw.get("fields", [])), tuple(raw.get("returns", [])))
            for name, raw in data["methods"].items()
        }
        self._checker = TypeChecker(self.types)
        self._by_lower = {name.lower(): spec for name, spec in self.methods.items()}

    def method(self, name: str) -> MethodSpec | None:
        """The method called `name` (case-insensitive, like Telegram), or None."""
        return self._by_lower.get(name.lower())

    # ---- top-level parameters -----------------------------------------------------------

    def decode_params(
        self,
        method: MethodSpec,
        raw: Mapping[str, Any],
        files: Mapping[str, UploadedFile],
    ) -> tuple[dict[str, Any], dict[str, UploadedFile], dict[str, Any]]:
        """Decode `raw` for `method`: (params, files by parameter/attach name, ignored unknowns).

        Uploaded InputFile parameters stay in `files` (by their part name; an "attach://x"
        reference is also filed under the parameter's name) and are not repeated in `params`.
        """
        params: dict[str, Any] = {}
        out_files = dict(files)
        for spec in method.fields.values():
            name = spec.name
            value = raw.get(name)
            if "InputFile" in spec.types and name in files:
                continue
            empty = value is None or (value == "" and (method.name, name) not in _EMPTY_ALLOWED)
            if empty:
                if spec.required and (method.name, name) not in _EMPTY_ALLOWED:
                    raise ApiError(400, self._missing(method.name, spec))
                continue
            if (
                "InputFile" in spec.types
                and isinstance(value, str)
                and value.startswith("attach://")
            ):
                attached = files.get(value.removeprefix("attach://"))
                if attached is None:
                    raise ApiError(400, f"Bad Request: there is no {name} in the request")
                out_files[name] = attached
                continue
            params[name] = self._decode_value(spec, value)
        ignored = {k: v for k, v in raw.items() if k not in method.fields}
        return params, out_files, ignored

    @staticmethod
    def _missing(method: str, spec: FieldSpec) -> str:
        known = _MISSING.get((method, spec.name)) or _MISSING.get(("*", spec.name))
        if known:
            return known
        if spec.types in (("InputFile",), ("InputFile", "String")):
            return f"Bad Request: there is no {spec.name} in the request"
        return f"Bad Request: {spec.name} is empty"

    def _decode_value(self, spec: FieldSpec, value: Any) -> Any:
        prims = [t for t in PRIMITIVES if t in spec.types]
        complex_types = [t for t in spec.types if t not in PRIMITIVES and t != "InputFile"]
        if complex_types:
            parsed: Any = value
            parse_failed = False
            if isinstance(value, str):
                try:
                    parsed = json.loads(value)
                except ValueError:
                    parse_failed = True
            if parse_failed or not isinstance(parsed, dict | list):
                if not prims:
                    what = _JSON_WHAT.get(spec.name, spec.name.replace("_", " "))
                    raise ApiError(400, f"Bad Request: can't parse {what} JSON object")
            else:
                try:
                    self._checker.check_union(parsed, complex_types, spec.name)
                except TypeMismatchError as exc:
                    if not prims:
                        what = _JSON_WHAT.get(spec.name, spec.name.replace("_", " "))
                        raise ApiError(400, f"Bad Request: can't parse {what}: {exc}") from None
                else:
                    return parsed
        for prim in prims:
            converted = convert_primitive(prim, value)
            if converted is not NO:
                return converted
        if "InputFile" in spec.types and not prims:
            raise ApiError(400, f"Bad Request: there is no {spec.name} in the request")
        raise ApiError(
            400, f'Bad Request: parameter "{spec.name}" must be of type {" or ".join(spec.types)}'
        )

    # ---- nested JSON values -------------------------------------------------------------

    def check_value(self, value: Any, type_expr: str, path: str = "value") -> None:
        """Validate a native JSON value against a type expression; ValueError if it does not fit."""
        try:
            self._checker.check(value, type_expr, path, 0)
        except TypeMismatchError as exc:
            raise ValueError(str(exc)) from None


@functools.lru_cache(maxsize=4)
def load_spec(path: Path | str = DEFAULT_SPEC_PATH) -> ApiSpec:
    """Load and cache api.json."""
    with Path(path).open(encoding="utf-8") as fh:
        return ApiSpec(json.load(fh))
