"""
The one cattrs converter: JSON answers in, frozen models out.

It maps camelCase keys to snake_case fields, parses datetimes as aware UTC,
ignores keys it does not know, keeps status strings it does not know, and
refuses a value of the wrong JSON type instead of coercing it.
"""

from __future__ import annotations

import enum
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, override

from ._errors import ResponseValidationError
from ._models import (
    BrowserSession,
    Capability,
    ConnectionStatus,
    CredentialField,
    DirectConnection,
    DisconnectResult,
    Integration,
    IntegrationStatus,
    ModelSync,
    PostConnectStep,
    Provider,
    SyncState,
    SyncStatus,
    as_provider,
)

__all__ = ("structure", "structure_capabilities", "structure_connect")

M = TypeVar("M")

_MODELS = (
    Integration,
    CredentialField,
    PostConnectStep,
    Capability,
    DirectConnection,
    BrowserSession,
    ConnectionStatus,
    ModelSync,
    SyncStatus,
    DisconnectResult,
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _exact(kind: type[Any], label: str) -> Callable[[Any, Any], Any]:
    def check(value: Any, _: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {label}, got {_json_type(value)}")
        return value

    return check


def _integer(value: Any, _: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {_json_type(value)}")
    return value


def _datetime(value: Any, _: Any) -> datetime:
    if type(value) is not str:
        raise TypeError(f"expected a date-time string, got {_json_type(value)}")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = _rfc3339(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


_RFC3339: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?"
    r"([Zz]|[+-]\d{2}:?\d{2})?\Z"
)


def _rfc3339(value: str) -> datetime:
    """
    An RFC 3339 date-time that ``fromisoformat`` of this Python refuses.

    Before Python 3.11 it reads only 3 or 6 digits of a second's fraction,
    and offsets with a colon.
    """
    match = _RFC3339.match(value)
    if match is None:
        raise ValueError(f"expected an ISO 8601 date-time, got {value!r}")
    date, time, fraction, offset = match.groups()
    text = f"{date}T{time}"
    if fraction:
        text += "." + fraction[:6].ljust(6, "0")
    if offset and offset not in "Zz":
        text += offset if ":" in offset else f"{offset[:3]}:{offset[3:]}"
    else:
        text += "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 date-time, got {value!r}") from None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _open_enum(tp: Any) -> type[enum.Enum] | None:
    """
    The enum of an ``SomeEnum | str`` annotation, or None for anything else.
    """
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    members = typing.get_args(tp)
    if len(members) != 2 or str not in members:
        return None
    kind = members[0] if members[1] is str else members[1]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind
    return None


def _open_enum_hook(tp: Any) -> Callable[[Any, Any], Any]:
    kind = _open_enum(tp)
    assert kind is not None
    if kind is Provider:
        lookup: Callable[[str], object] = as_provider
    else:
        known = {member.value: member for member in kind}

        def lookup(value: str) -> object:
            return known.get(value, value)

    def structure_open(value: Any, _: Any) -> object:
        if type(value) is not str:
            raise TypeError(f"expected a string, got {_json_type(value)}")
        return lookup(value)

    return structure_open


def _optional_of(tp: Any) -> Any:
    """
    The ``X`` of an ``X | None`` annotation, or None for anything else.
    """
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    members = typing.get_args(tp)
    if len(members) != 2 or type(None) not in members:
        return None
    return members[0] if members[1] is type(None) else members[1]


def _optional_hook(converter: cattrs.Converter, tp: Any) -> Callable[[Any, Any], Any]:
    inner = _optional_of(tp)
    structure_inner = converter.get_structure_hook(inner)

    def structure_optional(value: Any, _: Any) -> Any:
        return None if value is None else structure_inner(value, inner)

    return structure_optional


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _array_hook(
    converter: cattrs.Converter, tp: Any, *, detailed: bool
) -> Callable[[Any, Any], Any]:
    item_type = typing.get_args(tp)[0]
    structure_item = converter.get_structure_hook(item_type)

    def structure_array(value: Any, _: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise TypeError(f"expected an array, got {_json_type(value)}")
        if not detailed:
            return tuple([structure_item(item, item_type) for item in value])
        items = []
        errors = []
        for index, item in enumerate(value):
            try:
                items.append(structure_item(item, item_type))
            except Exception as exc:
                note = IterableValidationNote(
                    f"Structuring {tp} @ index {index}", index, item_type
                )
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
        return tuple(items)

    return structure_array


def _object_hook(
    converter: cattrs.Converter, model: type[Any]
) -> Callable[[Any, Any], Any]:
    attrs.resolve_types(model, globalns=vars(sys.modules[model.__module__]))
    renames: dict[str, Any] = {
        f.name: override(rename=_camel(f.name)) for f in attrs.fields(model)
    }
    structure_fields = make_dict_structure_fn(model, converter, **renames)

    def structure_object(value: Any, tp: Any) -> Any:
        if type(value) is not dict:
            raise TypeError(f"expected an object, got {_json_type(value)}")
        return structure_fields(value, tp)

    return structure_object


_SYNC_STATES: Final = {state.value: state for state in SyncState}
_INTEGRATION_STATES: Final = {state.value: state for state in IntegrationStatus}


def _optional_text(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    raise TypeError(f"expected a string, got {_json_type(value)}")


def _model_sync(value: Any, _: Any) -> ModelSync:
    """
    A sync-status model, decoded in one function: every poll of a sync
    decodes several. The same rules as the generated hooks, which name what
    does not fit.
    """
    if type(value) is not dict:
        raise TypeError(f"expected an object, got {_json_type(value)}")
    model, status = value["model"], value["status"]
    if type(model) is not str or type(status) is not str:
        raise TypeError("expected a string")
    synced = value.get("lastSyncedAt")
    return ModelSync(
        model,
        _SYNC_STATES.get(status, status),
        None if synced is None else _datetime(synced, None),
        _optional_text(value.get("errorMessage")),
    )


def _sync_status(value: Any, _: Any) -> SyncStatus:
    """
    A sync status, decoded in one function, as :func:`_model_sync`.
    """
    if type(value) is not dict:
        raise TypeError(f"expected an object, got {_json_type(value)}")
    provider, name = value["provider"], value["name"]
    category, status, syncs = value["category"], value["status"], value["syncs"]
    if (
        type(provider) is not str
        or type(name) is not str
        or type(category) is not str
        or type(status) is not str
        or type(syncs) is not list
    ):
        raise TypeError("expected a string or an array")
    return SyncStatus(
        as_provider(provider),
        name,
        category,
        _INTEGRATION_STATES.get(status, status),
        tuple([_model_sync(sync, ModelSync) for sync in syncs]),
    )


def _make_converter(*, detailed: bool) -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False, detailed_validation=detailed)
    converter.register_structure_hook(str, _exact(str, "a string"))
    converter.register_structure_hook(bool, _exact(bool, "a boolean"))
    converter.register_structure_hook(int, _integer)
    converter.register_structure_hook(datetime, _datetime)
    converter.register_structure_hook_factory(
        lambda tp: _open_enum(tp) is not None, _open_enum_hook
    )
    converter.register_structure_hook_factory(
        lambda tp: _optional_of(tp) is not None,
        lambda tp: _optional_hook(converter, tp),
    )
    converter.register_structure_hook_factory(
        _is_homogeneous_tuple,
        lambda tp: _array_hook(converter, tp, detailed=detailed),
    )
    for model in _MODELS:
        converter.register_structure_hook(model, _object_hook(converter, model))
    if not detailed:
        converter.register_structure_hook(ModelSync, _model_sync)
        converter.register_structure_hook(SyncStatus, _sync_status)
    return converter


# Two converters with the same rules: the fast one decodes, and only a body it
# refuses goes through the detailed one, which names every field that is wrong.
_fast = _make_converter(detailed=False)
_detailed = _make_converter(detailed=True)


def structure(body: object, model: type[M], *, route: str, status: int = 200) -> M:
    """
    Decode ``body`` into ``model``, or raise :class:`ResponseValidationError`.
    """
    if type(body) is not dict:
        raise ResponseValidationError(
            route=route,
            status=status,
            errors=[f"$: expected an object, got {_json_type(body)}"],
        )
    try:
        return _fast.structure(body, model)
    except Exception:
        pass
    try:
        return _detailed.structure(body, model)
    except Exception as exc:
        raise ResponseValidationError(
            route=route, status=status, errors=_describe(exc)
        ) from None


def structure_capabilities(
    body: object, *, route: str, single: bool
) -> Capability | Mapping[str, Capability]:
    """
    Decode a capabilities answer: one envelope, or a map of id to capability.
    """
    if type(body) is not dict:
        raise ResponseValidationError(
            route=route,
            status=200,
            errors=[f"$: expected an object, got {_json_type(body)}"],
        )
    if single:
        if "provider" not in body:
            raise ResponseValidationError(
                route=route, status=200, errors=["$.provider: required field missing"]
            )
        try:
            return structure(body["provider"], Capability, route=route)
        except ResponseValidationError as exc:
            nested = [e.replace("$", "$.provider", 1) for e in exc.errors]
            raise ResponseValidationError(
                route=route, status=200, errors=nested
            ) from None
    capabilities: dict[str, Capability] = {}
    errors: list[str] = []
    for key, value in body.items():
        try:
            capabilities[key] = structure(value, Capability, route=route)
        except ResponseValidationError as exc:
            errors.extend(e.replace("$", f"$.{key}", 1) for e in exc.errors)
    if errors:
        raise ResponseValidationError(route=route, status=200, errors=errors)
    return capabilities


def structure_connect(body: object, *, route: str) -> DirectConnection | BrowserSession:
    """
    Decode a connect answer: a browser session when it names one, else direct.
    """
    if type(body) is dict and "sessionId" in body:
        return structure(body, BrowserSession, route=route)
    return structure(body, DirectConnection, route=route)


def _describe(exc: Exception) -> list[str]:
    if isinstance(exc, cattrs.BaseValidationError):
        lines = cattrs.transform_error(exc, path="$", format_exception=_reason)
        return [_camel_path(line) for line in lines]
    return [f"$: {_reason(exc, None)}"]


def _reason(exc: BaseException, _: object) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, (TypeError, ValueError)) and str(exc).startswith("expected"):
        return str(exc)
    return f"invalid value ({type(exc).__name__})"


def _camel_path(line: str) -> str:
    message, sep, path = line.rpartition(" @ ")
    if not sep:
        return line
    return f"{'.'.join(_camel_step(step) for step in path.split('.'))}: {message}"


def _camel_step(step: str) -> str:
    name, bracket, rest = step.partition("[")
    return _camel(name) + bracket + rest
