"""
Properties of decoding: every valid answer decodes, nothing else escapes.

Bodies are drawn from strategies written after the OpenAPI schemas. The
converter is exercised directly, with no HTTP: what it accepts, it decodes
field for field; what it refuses, it refuses with ``ResponseValidationError``
naming the field, and never with anything else.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, Final

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from outlit_async import (
    BrowserSession,
    ConnectionState,
    ConnectionStatus,
    DirectConnection,
    DisconnectResult,
    Integration,
    IntegrationStatus,
    ModelSync,
    Provider,
    ResponseValidationError,
    SyncState,
    SyncStatus,
)
from outlit_async._convert import (
    _detailed,
    _fast,
    structure,
    structure_capabilities,
    structure_connect,
)
from outlit_async._integrations import _item
from outlit_async._transport import MAX_RETRY_AFTER, parse_retry_after

SETTINGS: Final = settings(max_examples=100, deadline=None)

KNOWN_VALUES: Final = frozenset(
    member.value
    for kind in (Provider, ConnectionState, IntegrationStatus, SyncState)
    for member in kind
) | {"gmail"}
"""Every enum value the SDK knows; any other string must stay a plain string."""

NULLABLE: Final = frozenset(
    {
        "command",
        "connectionId",
        "credentialType",
        "error",
        "errorMessage",
        "lastDataReceivedAt",
        "lastSyncedAt",
        "syncStatus",
    }
)
"""Fields the models accept as null: the schema allows it, or they are optional."""

Body = dict[str, Any]
Decode = Callable[[Any], tuple[object, object]]
"""Decodes a body; answers the result and the part of the body it stands for."""

texts = st.text(max_size=16)
unknown_strings = st.text(min_size=1, max_size=12).filter(
    lambda s: s not in KNOWN_VALUES
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)
date_times = moments.flatmap(
    lambda m: st.sampled_from(
        [m.isoformat(), m.astimezone(timezone.utc).isoformat()[:-6] + "Z"]
    )
)


def _enum(values: list[str], open_enums: bool) -> st.SearchStrategy[str]:
    return unknown_strings if open_enums else st.sampled_from(values)


def _schemas(open_enums: bool) -> dict[str, st.SearchStrategy[Body]]:
    """
    A strategy per response schema; with ``open_enums``, enum values are unknown.
    """
    providers = _enum([p.value for p in Provider], open_enums)
    integration_states = _enum(["connected", "not_connected"], open_enums)
    credential_field = st.fixed_dictionaries(
        {"key": texts, "label": texts}, optional={"secret": st.booleans()}
    )
    post_connect_step = st.fixed_dictionaries(
        {"id": texts, "required": st.booleans(), "supported": st.booleans()},
        optional={"command": texts},
    )
    capability = st.fixed_dictionaries(
        {
            "cliName": texts,
            "providerId": providers,
            "setupMode": st.sampled_from(["direct_api_key", "browser_session"]) | texts,
        },
        optional={
            "credentialType": st.none() | texts,
            "requiredFields": st.lists(credential_field, max_size=2),
            "commands": st.lists(texts, max_size=2),
            "postConnectSteps": st.lists(post_connect_step, max_size=2),
        },
    )
    integration = st.fixed_dictionaries(
        {
            "id": providers,
            "name": texts,
            "category": texts,
            "status": integration_states,
        },
        optional={
            "connectionId": st.none() | texts,
            "lastDataReceivedAt": st.none() | date_times,
            "syncStatus": st.none() | texts,
            "errorMessage": st.none() | texts,
        },
    )
    model_sync = st.fixed_dictionaries(
        {
            "model": texts,
            "status": _enum(["SUCCESS", "FAILED", "PENDING"], open_enums),
        },
        optional={
            "lastSyncedAt": st.none() | date_times,
            "errorMessage": st.none() | texts,
        },
    )
    return {
        "integration list": st.fixed_dictionaries(
            {"items": st.lists(integration, max_size=4)}
        ),
        "capabilities single": st.fixed_dictionaries({"provider": capability}),
        "capabilities map": st.dictionaries(providers, capability, max_size=3),
        "connect direct": st.fixed_dictionaries(
            {
                "connected": st.booleans(),
                "connectionId": texts,
                "alreadyConnected": st.booleans(),
            }
        ),
        "connect browser": st.fixed_dictionaries(
            {
                "sessionId": texts,
                "connectUrl": texts.map(lambda s: f"https://app.outlit.ai/c/{s}"),
                "alreadyConnected": st.booleans(),
            }
        ),
        "connection status": st.fixed_dictionaries(
            {
                "status": _enum(
                    ["pending", "connected", "failed", "expired"], open_enums
                ),
                "provider": providers,
            },
            optional={"error": texts},
        ),
        "disconnect": st.fixed_dictionaries({"success": st.just(True)}),
        "sync status": st.fixed_dictionaries(
            {
                "provider": providers,
                "name": texts,
                "category": texts,
                "status": integration_states,
                "syncs": st.lists(model_sync, max_size=4),
            }
        ),
    }


def _decode_list(body: Any) -> tuple[object, object]:
    route = "GET /api/integrations"
    items = [_item(item, index, route) for index, item in enumerate(body["items"])]
    return items, body["items"]


def _decode_single(body: Any) -> tuple[object, object]:
    route = "GET /api/integrations/capabilities"
    return structure_capabilities(body, route=route, single=True), body["provider"]


def _decode_map(body: Any) -> tuple[object, object]:
    route = "GET /api/integrations/capabilities"
    return structure_capabilities(body, route=route, single=False), body


def _decode_connect(kind: type[Any]) -> Decode:
    def decode(body: Any) -> tuple[object, object]:
        result = structure_connect(body, route="POST /api/integrations/connect")
        assert type(result) is kind
        return result, body

    return decode


def _decode_model(model: type[Any], route: str) -> Decode:
    return lambda body: (structure(body, model, route=route), body)


DECODERS: Final[dict[str, Decode]] = {
    "integration list": _decode_list,
    "capabilities single": _decode_single,
    "capabilities map": _decode_map,
    "connect direct": _decode_connect(DirectConnection),
    "connect browser": _decode_connect(BrowserSession),
    "connection status": _decode_model(
        ConnectionStatus, "GET /api/integrations/connect/status"
    ),
    "disconnect": _decode_model(DisconnectResult, "POST /api/integrations/disconnect"),
    "sync status": _decode_model(SyncStatus, "GET /api/integrations/sync-status"),
}
VALID: Final = _schemas(open_enums=False)
OPEN: Final = _schemas(open_enums=True)

MUTATION_ROOT: Final = {"integration list": "$.items"}
"""Where wrong types are planted: under the items for the list, else anywhere.

The list route's own envelope check lives in ``Integrations.list``; the
converter decodes its items one by one.
"""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] == "Z" else text)


def _assert_matches(decoded: object, sent: object) -> None:
    """
    ``decoded`` holds exactly what ``sent`` said, field for field.
    """
    if attrs.has(type(decoded)):
        assert isinstance(sent, dict)
        for field in attrs.fields(type(decoded)):  # type: ignore[arg-type]
            name = _camel(field.name)
            value = getattr(decoded, field.name)
            if name in sent:
                _assert_matches(value, sent[name])
            else:
                assert value == field.default
    elif isinstance(decoded, (list, tuple)):
        assert isinstance(sent, list)
        assert len(decoded) == len(sent)
        for one, other in zip(decoded, sent, strict=True):
            _assert_matches(one, other)
    elif isinstance(decoded, Mapping):
        assert isinstance(sent, dict)
        assert list(decoded) == list(sent)
        for key in sent:
            _assert_matches(decoded[key], sent[key])
    elif isinstance(decoded, datetime):
        assert isinstance(sent, str)
        assert decoded.utcoffset() == timedelta(0)
        assert decoded == _parse_time(sent)
    else:
        assert decoded == sent
        if isinstance(sent, str) and sent not in KNOWN_VALUES:
            assert type(decoded) is str
        if not isinstance(decoded, enum.Enum):
            assert type(decoded) is type(sent)


def _with_extras(value: Any, data: st.DataObject, *, top: bool = True) -> Any:
    """
    A copy of ``value`` with unknown fields added to every object in it.
    """
    if isinstance(value, list):
        return [_with_extras(item, data) for item in value]
    if not isinstance(value, dict):
        return value
    copy = {key: _with_extras(item, data) for key, item in value.items()}
    if top:
        extras = data.draw(st.dictionaries(texts, json_values, max_size=2))
        copy.update({f"x-{key}": item for key, item in extras.items()})
    return copy


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3)
    ),
    max_leaves=8,
)

WRONG: Final[dict[str, st.SearchStrategy[Any]]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "integer": st.integers(),
    "number": st.floats(allow_nan=False),
    "string": texts,
    "array": st.lists(st.integers(), max_size=2),
    "object": st.dictionaries(texts, st.integers(), max_size=2),
}


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _nodes(value: Any, path: str, key: str | None) -> list[tuple[str, str | None]]:
    """
    Every value under ``value``: its path, and the field name that holds it.
    """
    found: list[tuple[str, str | None]] = [(path, key)]
    if isinstance(value, dict):
        for name, item in value.items():
            found += _nodes(item, f"{path}.{name}", name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _nodes(item, f"{path}[{index}]", None)
    return found


def _steps(path: str) -> list[str | int]:
    """
    The keys and indexes of a path such as ``$.syncs[0].model``.
    """
    if path == "$":
        return []
    return [
        int(step[1:-1]) if step.startswith("[") else step
        for step in path[2:].replace("[", ".[").split(".")
    ]


def _value_at(body: Any, path: str) -> Any:
    value = body
    for step in _steps(path):
        value = value[step]
    return value


def _replace(body: Any, path: str, new: object) -> Any:
    """
    A copy of ``body`` with the value at ``path`` replaced by ``new``.
    """
    steps = _steps(path)
    if not steps:
        return new
    copy = json.loads(json.dumps(body))
    parent = copy
    for step in steps[:-1]:
        parent = parent[step]
    parent[steps[-1]] = new
    return copy


@pytest.mark.parametrize("schema", list(VALID))
@SETTINGS
@given(data=st.data())
def test_every_valid_body_decodes(schema: str, data: st.DataObject) -> None:
    """A body that follows the schema decodes, and the model holds every value."""
    body = data.draw(VALID[schema], label="body")

    decoded, sent = DECODERS[schema](body)

    _assert_matches(decoded, sent)


@pytest.mark.parametrize("schema", list(VALID))
@SETTINGS
@given(data=st.data())
def test_unknown_fields_are_ignored(schema: str, data: st.DataObject) -> None:
    """Fields added at any level decode to the same model as without them."""
    body = data.draw(VALID[schema], label="body")
    extended = _with_extras(body, data, top=schema != "capabilities map")

    assert DECODERS[schema](extended)[0] == DECODERS[schema](body)[0]


@pytest.mark.parametrize("schema", [s for s in OPEN if s != "disconnect"])
@SETTINGS
@given(data=st.data())
def test_unknown_enum_values_are_kept_as_strings(
    schema: str, data: st.DataObject
) -> None:
    """A status or provider id the SDK does not know is kept as its plain string."""
    body = data.draw(OPEN[schema], label="body")

    decoded, sent = DECODERS[schema](body)

    _assert_matches(decoded, sent)


@pytest.mark.parametrize("schema", list(VALID))
@SETTINGS
@given(data=st.data())
def test_a_wrong_type_raises_validation_error_naming_it(
    schema: str, data: st.DataObject
) -> None:
    """A value of the wrong JSON type raises ResponseValidationError at its path."""
    body = data.draw(VALID[schema], label="body")
    root = MUTATION_ROOT.get(schema, "$")
    nodes = [
        (path, key)
        for path, key in _nodes(body, "$", None)
        if path.startswith(root) and (path != root or root == "$")
    ]
    if not nodes:
        return
    path, key = data.draw(st.sampled_from(nodes), label="path")
    original = _value_at(body, path)
    allowed = {_json_kind(original)}
    if key in NULLABLE:
        allowed |= {"null", "string"}
    wrong_kind = data.draw(
        st.sampled_from(sorted(set(WRONG) - allowed)), label="wrong kind"
    )
    new = data.draw(WRONG[wrong_kind], label="wrong value")

    with pytest.raises(ResponseValidationError) as caught:
        DECODERS[schema](_replace(body, path, new))

    assert any(error.startswith(f"{path}: ") for error in caught.value.errors), (
        caught.value.errors
    )


@pytest.mark.parametrize("bodies", [VALID, OPEN], ids=["known", "unknown values"])
@SETTINGS
@given(data=st.data())
def test_the_fast_sync_status_decoder_agrees_with_the_detailed_one(
    bodies: dict[str, st.SearchStrategy[Body]], data: st.DataObject
) -> None:
    """Polls decode sync status in one function; it agrees with the generated hooks."""
    body = data.draw(bodies["sync status"], label="body")

    assert _fast.structure(body, SyncStatus) == _detailed.structure(body, SyncStatus)


RAW_DECODERS: Final[dict[str, Callable[[Any], object]]] = {
    "capabilities single": lambda body: structure_capabilities(
        body, route="GET /api/integrations/capabilities", single=True
    ),
    "capabilities map": lambda body: structure_capabilities(
        body, route="GET /api/integrations/capabilities", single=False
    ),
    "connect": lambda body: structure_connect(
        body, route="POST /api/integrations/connect"
    ),
    **{
        model.__name__: _decode_model(model, "GET /")
        for model in (Integration, ConnectionStatus, DisconnectResult, SyncStatus)
    },
}


@pytest.mark.parametrize("decoder", list(RAW_DECODERS))
@SETTINGS
@given(body=json_values)
def test_any_json_decodes_or_raises_validation_error(decoder: str, body: Any) -> None:
    """Whatever JSON arrives, the converter answers a model or the one error type."""
    try:
        RAW_DECODERS[decoder](body)
    except ResponseValidationError as exc:
        assert exc.errors
        assert all(error.startswith("$") for error in exc.errors)


NOW: Final = datetime(2030, 6, 15, 12, 0, 0, tzinfo=timezone.utc)


@SETTINGS
@given(seconds=st.integers(min_value=0, max_value=10**9))
def test_retry_after_whole_seconds_are_obeyed_up_to_the_cap(seconds: int) -> None:
    """A whole number of seconds is that many seconds, capped at one minute."""
    assert parse_retry_after(str(seconds)) == min(seconds, MAX_RETRY_AFTER)


@SETTINGS
@given(seconds=st.floats(min_value=-1e9, max_value=1e9))
def test_retry_after_decimal_seconds_are_clamped(seconds: float) -> None:
    """A decimal number is clamped to [0, 60]: negative waits mean none."""
    assert parse_retry_after(repr(seconds)) == min(max(seconds, 0.0), 60.0)


@SETTINGS
@given(
    moment=st.datetimes(
        min_value=datetime(2030, 6, 14), max_value=datetime(2030, 6, 17)
    ),
    zone=offsets,
)
def test_retry_after_http_dates_give_the_seconds_until_then(
    moment: datetime, zone: timezone
) -> None:
    """An HTTP date gives the seconds from now until then, clamped to [0, 60]."""
    moment = moment.replace(microsecond=0, tzinfo=timezone.utc)
    expected = min(max((moment - NOW).total_seconds(), 0.0), MAX_RETRY_AFTER)
    now = NOW.timestamp()

    in_gmt = parse_retry_after(format_datetime(moment, usegmt=True), now=now)
    with_offset = parse_retry_after(format_datetime(moment.astimezone(zone)), now=now)

    assert in_gmt == pytest.approx(expected)
    assert with_offset == pytest.approx(expected)


@SETTINGS
@given(
    value=st.text(max_size=40)
    | st.from_regex(
        r"\A[A-Za-z]{3}, \d{1,12} [A-Za-z]{3} \d{1,14} [\d:]{1,14} .{0,6}\Z"
    )
    | st.from_regex(r"\A[-+]?[\d_.eE]{1,12}\Z")
)
@example(value="nan")
@example(value="inf")
@example(value="-inf")
@example(value="1e999")
@example(value="Mon, 01 Jan 99999 00:00:00 GMT")
@example(value="Wed, 21 Oct 99999999999 07:28:00 GMT")
@example(value="Wed, 9999999999 Oct 2030 07:28:00 GMT")
@example(value="Wed, 21 Oct 2030 9999999999:28:00 GMT")
@example(value="Mon, 01 Jan 2030 00:00:00 +9999")
@example(value="Mon, 01 Jan 2030 00:00:00 -0000")
@example(value="")
def test_retry_after_garbage_never_raises(value: str) -> None:
    """Any header value gives None or a wait within [0, 60] seconds, never an error."""
    result = parse_retry_after(value)

    assert result is None or 0.0 <= result <= MAX_RETRY_AFTER


@pytest.mark.parametrize(
    ("model", "body", "path"),
    [
        (
            SyncStatus,
            {
                "provider": "stripe",
                "name": "Stripe",
                "category": "billing",
                "status": "connected",
            },
            "$.syncs",
        ),
        (ConnectionStatus, {"status": "pending"}, "$.provider"),
        (BrowserSession, {"sessionId": "s", "alreadyConnected": False}, "$.connectUrl"),
    ],
)
def test_every_required_field_is_required(
    model: type[Any], body: dict[str, Any], path: str
) -> None:
    """A body without a field the schema requires names that field."""
    with pytest.raises(ResponseValidationError) as caught:
        structure(body, model, route="GET /x")

    assert caught.value.errors == (f"{path}: required field missing",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-04T05:06:07Z", datetime(2025, 3, 4, 5, 6, 7)),
        ("2025-03-04T05:06:07.1Z", datetime(2025, 3, 4, 5, 6, 7, 100000)),
        ("2025-03-04T05:06:07.12345Z", datetime(2025, 3, 4, 5, 6, 7, 123450)),
        ("2025-03-04T05:06:07.123456789Z", datetime(2025, 3, 4, 5, 6, 7, 123456)),
        ("2025-03-04t05:06:07z", datetime(2025, 3, 4, 5, 6, 7)),
        ("2025-03-04 05:06:07+00:00", datetime(2025, 3, 4, 5, 6, 7)),
        ("2025-03-04T06:06:07+0100", datetime(2025, 3, 4, 5, 6, 7)),
        ("2025-03-04T00:36:07.5-04:30", datetime(2025, 3, 4, 5, 6, 7, 500000)),
        ("2025-03-04T05:06:07", datetime(2025, 3, 4, 5, 6, 7)),
    ],
)
def test_every_rfc_3339_form_decodes_to_aware_utc(
    text: str, expected: datetime
) -> None:
    """Fractions of any length and offsets with or without a colon, on every Python."""
    body = {"model": "invoices", "status": "SUCCESS", "lastSyncedAt": text}

    decoded = structure(body, ModelSync, route="GET /x")

    assert decoded.last_synced_at == expected.replace(tzinfo=timezone.utc)
    assert decoded.last_synced_at is not None
    assert decoded.last_synced_at.tzinfo is timezone.utc


@pytest.mark.parametrize(
    "text", ["yesterday", "2025-13-04T05:06:07Z", "2025-03-04T25:06:07Z", "05:06:07"]
)
def test_a_date_time_that_is_not_one_names_its_field(text: str) -> None:
    """A lastSyncedAt that is no date-time is a ResponseValidationError at its path."""
    body = {"model": "invoices", "status": "SUCCESS", "lastSyncedAt": text}

    with pytest.raises(ResponseValidationError) as caught:
        structure(body, ModelSync, route="GET /x")

    assert caught.value.errors[0].startswith("$.lastSyncedAt: ")
