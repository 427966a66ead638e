from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from outlit_async import AsyncOutlit
from outlit_async._integrations import ArgumentRefused
from outlit_async._models import Capability
from outlit_async.cli import Exit, _demo, main
from outlit_async.cli._exit import report
from outlit_async.testing import FakeOutlit, SessionScript, SyncScript

pytestmark = pytest.mark.anyio

KEY = "ok_canary_key_4f1d9e"
"""The API key every test puts in the environment; no output may show it."""
SECRET = "sk_canary_secret_77b2c0"
"""A provider credential; no output may show it."""
OTHER_KEY = "ok_canary_other_org_51a8"


class Result:
    """
    What one run of the command printed, and its exit status.
    """

    def __init__(self, status: int, out: str, err: str) -> None:
        self.status = status
        self.out = out
        self.err = err

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOutlit]:
    async with FakeOutlit(KEY) as server:
        yield server


@pytest.fixture
def env(fake: FakeOutlit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTLIT_API_KEY", KEY)
    monkeypatch.setenv("OUTLIT_BASE_URL", fake.url)


@pytest.fixture
def cli(
    env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """
    Run ``main(argv)`` in a worker thread (its own event loop) while the fake
    serves on the test's loop; assert that no secret reached stdout or stderr.
    """

    async def run(*argv: str, stdin: str = "") -> Result:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        status = await anyio.to_thread.run_sync(main, list(argv))
        captured = capsys.readouterr()
        for secret in (KEY, SECRET, OTHER_KEY):
            assert secret not in captured.out
            assert secret not in captured.err
        return Result(status, captured.out, captured.err)

    return run


async def test_list_prints_one_pretty_object(cli: Callable[..., Any]) -> None:
    """`list` prints every provider as one indented JSON object off a terminal."""
    result = await cli("list")

    assert result.status == Exit.OK
    assert result.out.startswith('{\n  "items": [')
    items = result.json()["items"]
    assert len(items) == 12
    assert {item["status"] for item in items} == {"not_connected"}


async def test_list_connected_only(cli: Callable[..., Any], fake: FakeOutlit) -> None:
    """`list --connected-only` shows only connected providers, snake_case fields."""
    fake.connect_provider("stripe")

    result = await cli("list", "--connected-only")

    (item,) = result.json()["items"]
    assert item["id"] == "stripe"
    assert item["connection_id"].startswith("conn_")
    assert fake.requests_to("/api/integrations", connectedOnly="true")


async def test_json_flag_prints_one_compact_object_per_line(
    cli: Callable[..., Any],
) -> None:
    """`--json` prints one compact JSON object per line, before or after the command."""
    before = await cli("--json", "list")
    after = await cli("list", "--json")

    assert before.out == after.out
    lines = before.out.splitlines()
    assert len(lines) == 12
    assert all(" " not in line.split('"name"')[0] for line in lines)
    assert json.loads(lines[0])["id"] == "hubspot"


async def test_capabilities_of_one_and_of_all(cli: Callable[..., Any]) -> None:
    """`capabilities` maps every provider; with a provider it shows only that one."""
    every = await cli("capabilities")
    one = await cli("capabilities", "posthog")

    assert len(every.json()) == 12
    assert every.json()["hubspot"]["setup_mode"] == "browser_session"
    fields = [field["key"] for field in one.json()["required_fields"]]
    assert fields == ["apiKey", "region", "projectId"]


async def test_connect_reads_config_from_stdin_and_never_prints_it(
    cli: Callable[..., Any], fake: FakeOutlit
) -> None:
    """`connect --config-stdin` sends the config and prints the connection id only."""
    result = await cli(
        "connect", "stripe", "--config-stdin", stdin=json.dumps({"apiKey": SECRET})
    )

    assert result.status == Exit.OK
    answer = result.json()
    assert answer["provider"] == "stripe"
    assert answer["connected"] is True
    assert (
        answer["connection_id"]
        == fake.organization().connections["stripe"].connection_id
    )
    (sent,) = fake.requests_to("/api/integrations/connect")
    assert sent.body == {"provider": "stripe", "config": {"apiKey": SECRET}}


async def test_connect_reads_config_from_a_file(
    cli: Callable[..., Any], fake: FakeOutlit, tmp_path: Path
) -> None:
    """`connect --config-file` sends the file's object; the output names no value."""
    config = tmp_path / "supabase.json"
    config.write_text(
        json.dumps({"projectUrl": "https://x.supabase.co", "serviceRoleKey": SECRET})
    )

    result = await cli("--json", "connect", "supabase", "--config-file", str(config))

    (line,) = result.lines()
    assert line["connected"] is True
    assert set(line) == {"provider", "connected", "connection_id", "already_connected"}
    assert "supabase" in fake.organization().connections


async def test_connect_browser_provider_prints_the_link(
    cli: Callable[..., Any], fake: FakeOutlit
) -> None:
    """Connecting a browser provider prints its session id and connect link."""
    result = await cli("connect", "hubspot")

    answer = result.json()
    assert fake.session(answer["session_id"]).status == "pending"
    assert answer["connect_url"] == f"{fake.url}/connect/{answer['session_id']}"


async def test_a_bad_config_is_a_usage_error_that_hides_the_content(
    cli: Callable[..., Any], fake: FakeOutlit, tmp_path: Path
) -> None:
    """Unparsable config exits 2 with the position of the error, not its text."""
    config = tmp_path / "broken.json"
    config.write_text('{"apiKey": "' + SECRET + '",,}')

    broken = await cli("connect", "stripe", "--config-file", str(config))
    listed = await cli("connect", "stripe", "--config-stdin", stdin=f'["{SECRET}"]')
    missing = await cli("connect", "stripe", "--config-file", str(tmp_path / "none"))

    assert broken.status == listed.status == missing.status == Exit.USAGE
    assert "line 1, column" in broken.err
    assert "must be a JSON object" in listed.err
    assert "cannot read" in missing.err
    assert fake.requests == []


async def test_an_api_error_names_its_type_and_route(cli: Callable[..., Any]) -> None:
    """A refused request exits 1 with one stderr line: error type, route, details."""
    result = await cli("connect", "stripe", "--config-stdin", stdin="{}")

    assert result.status == Exit.FAILED
    assert result.out == ""
    (line,) = result.err.splitlines()
    assert line.startswith(
        "outlit-async: BadRequestError: POST /api/integrations/connect"
    )
    assert "config.apiKey: Required" in line


async def test_status_of_a_session(cli: Callable[..., Any], fake: FakeOutlit) -> None:
    """`status` shows the session's state and provider."""
    session_id = fake.create_session("slack")
    fake.fail_session(session_id, error="User denied access")

    result = await cli("status", session_id)

    assert result.json() == {
        "session_id": session_id,
        "status": "failed",
        "provider": "slack",
        "error": "User denied access",
    }


async def test_disconnect(cli: Callable[..., Any], fake: FakeOutlit) -> None:
    """`disconnect` succeeds once, then fails with NotConnectedError (exit 1)."""
    fake.connect_provider("pylon")

    first = await cli("disconnect", "pylon")
    again = await cli("disconnect", "pylon")

    assert first.json() == {"provider": "pylon", "success": True}
    assert again.status == Exit.FAILED
    assert "NotConnectedError: POST /api/integrations/disconnect" in again.err


async def test_sync_status(cli: Callable[..., Any], fake: FakeOutlit) -> None:
    """`sync-status` shows each model's status and time."""
    fake.set_sync("stripe", "StripeInvoice", "FAILED", error_message="boom")

    result = await cli("sync-status", "stripe")

    answer = result.json()
    assert answer["status"] == "connected"
    invoice = next(s for s in answer["syncs"] if s["model"] == "StripeInvoice")
    assert invoice == {
        "model": "StripeInvoice",
        "status": "FAILED",
        "last_synced_at": None,
        "error_message": "boom",
    }


async def test_setup_step_with_a_config_file(
    cli: Callable[..., Any], fake: FakeOutlit, tmp_path: Path
) -> None:
    """`setup-step` sends the file's config and shows the step's answer whole."""
    fake.connect_provider("hubspot")
    config = tmp_path / "mappings.json"
    mapping = {"source": "opportunity", "target": "trial"}
    config.write_text(json.dumps({"mappings": [mapping]}))

    asked = await cli("setup-step", "hubspot", "mappings")
    done = await cli("setup-step", "hubspot", "mappings", "--config-file", str(config))

    assert asked.json()["status"] == "config_required"
    assert done.status == Exit.OK
    assert done.json()["status"] == "configured"
    assert fake.requests[-1].body["config"] == {"mappings": [mapping]}


async def test_tables_on_request(cli: Callable[..., Any], fake: FakeOutlit) -> None:
    """`--table` draws readable tables instead of JSON for every route."""
    fake.connect_provider("stripe")
    session_id = fake.create_session("hubspot")

    for argv, expected in [
        (("list",), "Integrations"),
        (("capabilities",), "with credentials"),
        (("status", session_id), "pending"),
        (("sync-status", "stripe"), "StripeInvoice"),
        (("connect", "attio"), "outlit-async wait"),
    ]:
        result = await cli("--table", *argv)
        assert result.status == Exit.OK
        assert expected in result.out
        assert not result.out.lstrip().startswith("{")


async def test_missing_key_exits_3(
    cli: Callable[..., Any], fake: FakeOutlit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no key in the environment the command exits 3 before any request."""
    monkeypatch.delenv("OUTLIT_API_KEY")

    result = await cli("list")

    assert result.status == Exit.AUTH
    assert "set the environment variable OUTLIT_API_KEY" in result.err
    assert fake.requests == []


async def test_refused_key_exits_3(
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key the API refuses (401) exits 3, naming AuthenticationError."""
    monkeypatch.setenv("MY_KEY", "ok_revoked")

    result = await cli("--api-key-env", "MY_KEY", "list")

    assert result.status == Exit.AUTH
    assert "AuthenticationError: GET /api/integrations answered 401" in result.err


async def test_api_key_env_names_the_variable(
    cli: Callable[..., Any], fake: FakeOutlit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--api-key-env` reads the key from the named variable."""
    fake.add_organization(OTHER_KEY)
    fake.connect_provider("clerk", key=OTHER_KEY)
    monkeypatch.setenv("OTHER_ORG_KEY", OTHER_KEY)

    result = await cli("--api-key-env", "OTHER_ORG_KEY", "list", "--connected-only")

    assert [item["id"] for item in result.json()["items"]] == ["clerk"]


async def test_usage_errors_exit_2(cli: Callable[..., Any]) -> None:
    """Bad arguments exit 2, and there is no option that takes a key or config."""
    for argv in [
        ("frobnicate",),
        ("connect",),
        ("--api-key", KEY, "list"),
        ("--api-key-env", KEY, "list"),
        ("connect", "stripe", "--config", json.dumps({"apiKey": SECRET})),
        ("connect", "stripe", "--config-stdin", "--config-file", "x.json"),
        ("wait", "s1", "--interval", "0"),
    ]:
        assert (await cli(*argv)).status == Exit.USAGE, argv


async def test_an_empty_argument_is_a_usage_error_on_one_line(
    cli: Callable[..., Any], fake: FakeOutlit
) -> None:
    """An empty or blank argument exits 2 with one line naming it, no traceback."""
    for argv, name in [
        (("status", ""), "SESSION_ID"),
        (("connect", ""), "PROVIDER"),
        (("setup-step", "P", ""), "STEP"),
        (("setup-step", "", "mappings"), "PROVIDER"),
        (("disconnect", " "), "PROVIDER"),
        (("sync-status", ""), "PROVIDER"),
        (("capabilities", ""), "PROVIDER"),
        (("wait", "s1", ""), "SESSION_ID"),
        (("watch-sync", "stripe", "\t"), "PROVIDER"),
        (("onboard", ""), "FILE"),
    ]:
        result = await cli(*argv)

        assert result.status == Exit.USAGE, argv
        assert result.out == ""
        (line,) = result.err.splitlines()
        assert line.startswith(f"outlit-async: {name} must not be empty"), argv
        assert f"outlit-async {argv[0]} --help" in line
    assert fake.requests == []


async def test_an_argument_the_client_refuses_is_a_usage_error(
    fake: FakeOutlit, capsys: pytest.CaptureFixture[str]
) -> None:
    """The client's own refusals are usage errors, on one line, without the value."""
    async with AsyncOutlit(fake.api_key, base_url=fake.url) as client:
        with pytest.raises(ArgumentRefused) as empty:
            await client.integrations.connection_status("")
        with pytest.raises(TypeError) as not_a_mapping:
            await client.integrations.connect("stripe", [SECRET])  # type: ignore[call-overload]
    refused = ArgumentRefused(f"provider must be a provider id, got {SECRET!r}")

    statuses = [report(error) for error in (empty.value, not_a_mapping.value, refused)]

    assert isinstance(not_a_mapping.value, ArgumentRefused)
    assert statuses == [Exit.USAGE] * 3
    assert capsys.readouterr().err.splitlines() == [
        "outlit-async: invalid argument: session_id must be a non-empty string",
        "outlit-async: invalid argument: config must be a mapping of field names "
        "to values, not list",
        "outlit-async: invalid argument: provider must be a provider id",
    ]
    assert fake.requests == []


async def test_unexpected_arguments_are_counted_never_repeated(
    cli: Callable[..., Any], fake: FakeOutlit
) -> None:
    """An argument typed by mistake may be a credential: errors never repeat it."""
    one = await cli("connect", "stripe", SECRET)
    two = await cli("connect", "stripe", SECRET, "--api-key", "--json")

    assert one.status == two.status == Exit.USAGE
    assert "error: 1 unexpected argument, not shown" in one.err
    assert "error: 2 unexpected arguments, not shown" in two.err
    assert "--config-file FILE or --config-stdin" in one.err
    assert one.err.splitlines()[0].startswith("usage: outlit-async connect")
    assert fake.requests == []


async def test_refused_values_are_never_repeated(
    cli: Callable[..., Any], fake: FakeOutlit
) -> None:
    """A refused command, choice or option value is named, but never shown."""
    for argv, expected in [
        ((SECRET, "list"), "argument COMMAND: invalid choice (choose from "),
        (("capabilities", "stripe", SECRET), "1 unexpected argument"),
        (("watch-sync", "stripe", "--until", SECRET), "(choose from 'all-synced'"),
        ((f"--json={SECRET}", "list"), "argument --json: takes no value"),
        (("list", f"--connected-only={SECRET}"), "takes no value"),
        (("demo", "--seed", SECRET), "argument --seed: must be a whole number"),
        (("wait", "s1", "--interval", SECRET), "must be a number of seconds"),
        (("--timeout", SECRET, "list"), "must be a number of seconds"),
        (("--max-concurrency", SECRET, "list"), "must be a whole number"),
        (("sandbox", "--port", SECRET), "must be a port number from 0 to 65535"),
        (("connect", "stripe", "--config-file", SECRET), "cannot read the config"),
        (("onboard", SECRET), "cannot read the file to onboard"),
    ]:
        result = await cli(*argv)

        assert result.status == Exit.USAGE, argv
        assert expected in result.err, argv
        assert "Traceback" not in result.err
    assert fake.requests == []


async def test_wait_with_a_refused_key_stops_every_watch(
    cli: Callable[..., Any], fake: FakeOutlit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 while waiting stops all the watches and exits 3."""
    sessions = [fake.create_session("hubspot"), fake.create_session("slack")]
    monkeypatch.setenv("OUTLIT_API_KEY", "ok_revoked")

    result = await cli("wait", *sessions, "--interval", "0.01")

    assert result.status == Exit.AUTH
    assert "AuthenticationError: GET /api/integrations/connect/status" in result.err
    assert len(fake.requests_to("/api/integrations/connect/status")) <= 2


async def test_wait_exits_0_when_every_session_connects(
    cli: Callable[..., Any], fake: FakeOutlit
) -> None:
    """`wait` prints a JSON line per transition and exits 0 when all connect."""
    sessions = [
        fake.create_session("hubspot", outcome="connected", after_polls=2),
        fake.create_session("attio", outcome="connected", after_polls=1),
    ]

    result = await cli("wait", *sessions, "--interval", "0.01")

    assert result.status == Exit.OK
    lines = result.lines()
    assert {(line["key"], line["current"]) for line in lines if line["terminal"]} == {
        (sessions[0], "connected"),
        (sessions[1], "connected"),
    }
    first = next(line for line in lines if line["key"] == sessions[0])
    assert (first["previous"], first["current"], first["terminal"]) == (
        None,
        "pending",
        False,
    )
    assert set(first) == {
        "kind",
        "key",
        "previous",
        "current",
        "at",
        "terminal",
        "error",
    }


async def test_wait_exits_1_for_mixed_outcomes(
    cli: Callable[..., Any], fake: FakeOutlit
) -> None:
    """`wait` exits 1 unless all connect; each ending names its error type."""
    connected = fake.create_session("hubspot", outcome="connected", after_polls=1)
    failed = fake.create_session("slack", outcome="failed", after_polls=1)
    expired = fake.create_session("attio", outcome="expired", after_polls=1)
    pending = fake.create_session("google-mail")

    result = await cli(
        "wait",
        connected,
        failed,
        expired,
        pending,
        "--interval",
        "0.01",
        "--timeout",
        "0.3",
    )

    assert result.status == Exit.FAILED
    endings = {line["key"]: line for line in result.lines() if line["terminal"]}
    assert endings[connected]["error"] is None
    assert endings[failed]["error"]["type"] == "ConnectionFailedError"
    assert "User denied access" in endings[failed]["error"]["message"]
    assert endings[expired]["error"]["type"] == "ConnectionExpiredError"
    assert endings[pending]["error"]["type"] == "PollTimeoutError"
    assert endings[pending]["current"] == "pending"


async def test_wait_table_shows_counts_elapsed_time_and_rate(
    cli: Callable[..., Any], fake: FakeOutlit
) -> None:
    """With --table, `wait` shows each ending and a board of counts, time and rate."""
    connected = fake.create_session("hubspot", outcome="connected", after_polls=2)
    failed = fake.create_session("slack", outcome="failed", after_polls=1)
    pending = fake.create_session("attio")

    result = await cli(
        "--table",
        "wait",
        connected,
        failed,
        pending,
        "--interval",
        "0.01",
        "--timeout",
        "0.3",
    )

    assert result.status == Exit.FAILED
    assert "Waiting on 3 connect session(s)" in result.out
    board = next(line for line in result.out.splitlines() if "sessions" in line)
    assert re.search(
        r"pending 0\s+connected 1\s+failed 1\s+expired 0\s+timed out 1", board
    )
    progress = re.search(
        r"(\d+\.\d) s elapsed\s+(\d+) transitions\s+(\d+\.\d)/s", result.out
    )
    assert progress is not None
    elapsed, transitions, rate = progress.groups()
    assert 0.3 <= float(elapsed) < 30
    assert int(transitions) >= 5
    assert float(rate) > 0
    assert f"{failed} failed  User denied access" in result.out
    assert f"{pending} timed out" in result.out


async def test_watch_sync_exits_0_when_all_synced(
    cli: Callable[..., Any], fake: FakeOutlit
) -> None:
    """`watch-sync` follows several providers and exits 0 once every one synced."""
    for provider in ("stripe", "clerk"):
        for model in fake.default_models(provider):
            fake.set_sync(provider, model, "SUCCESS")

    result = await cli("watch-sync", "stripe", "clerk", "--interval", "0.01")

    assert result.status == Exit.OK
    endings = {line["key"]: line for line in result.lines() if line["terminal"]}
    assert set(endings) == {"stripe", "clerk"}
    assert endings["stripe"]["current"] == "synced"
    assert endings["stripe"]["models"]["StripeInvoice"] == "SUCCESS"


async def test_watch_sync_exits_1_when_a_model_failed(
    cli: Callable[..., Any], fake: FakeOutlit
) -> None:
    """Until `settled`, a failed model ends the watch as failed and exits 1."""
    fake.set_sync("pylon", "PylonIssue", "SUCCESS")
    fake.set_sync("pylon", "PylonAccount", "FAILED", error_message="401")

    settled = await cli("watch-sync", "pylon", "--interval", "0.01")
    waiting = await cli(
        "watch-sync",
        "pylon",
        "--until",
        "all-synced",
        "--interval",
        "0.01",
        "--timeout",
        "0.1",
    )

    assert settled.status == waiting.status == Exit.FAILED
    assert settled.lines()[-1]["current"] == "failed"
    assert waiting.lines()[-1]["error"]["type"] == "PollTimeoutError"


@pytest.fixture
async def scripted() -> AsyncIterator[FakeOutlit]:
    """
    A fake whose sessions connect on their second poll and whose syncs succeed
    on the second sync-status poll.
    """
    async with FakeOutlit(
        KEY,
        session_script=SessionScript("connected", after_polls=2),
        sync_script=SyncScript(succeed_after_polls=2),
    ) as server:
        server.add_organization(OTHER_KEY)
        yield server


@pytest.fixture
def scripted_cli(
    scripted: FakeOutlit,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Any]:
    monkeypatch.setenv("OUTLIT_API_KEY", KEY)
    monkeypatch.setenv("OUTLIT_BASE_URL", scripted.url)
    monkeypatch.setenv("OTHER_ORG_KEY", OTHER_KEY)

    async def run(*argv: str) -> Result:
        capsys.readouterr()
        status = await anyio.to_thread.run_sync(main, list(argv))
        captured = capsys.readouterr()
        for secret in (KEY, SECRET, OTHER_KEY):
            assert secret not in captured.out + captured.err
        return Result(status, captured.out, captured.err)

    return run


def _write_lines(path: Path, *lines: object) -> Path:
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
        + "\n"
    )
    return path


async def test_onboard_reports_bad_lines_and_runs_the_rest(
    scripted_cli: Callable[..., Any], scripted: FakeOutlit, tmp_path: Path
) -> None:
    """Bad lines are named by number on stderr; the others connect and sync; exit 1."""
    jobs = _write_lines(
        tmp_path / "orgs.jsonl",
        {"org": "acme", "provider": "stripe", "config": {"apiKey": SECRET}},
        '{"org": "bad json", ',
        {"org": "no-provider"},
        {"org": "ghost", "provider": "slack", "key_env": "NOT_SET_ANYWHERE"},
        "",
        {"org": "acme", "provider": "hubspot"},
        {"org": "globex", "provider": "slack", "key_env": "OTHER_ORG_KEY"},
        {"org": "leaky", "provider": "clerk", "api_key": SECRET},
    )

    result = await scripted_cli("onboard", str(jobs), "--interval", "0.01")

    assert result.status == Exit.FAILED
    errors = result.err.splitlines()
    assert len(errors) == 4
    assert "line 2: invalid JSON" in errors[0]
    assert "line 3: missing 'provider'" in errors[1]
    assert (
        "line 4: the key environment variable NOT_SET_ANYWHERE is not set"
        in (errors[2])
    )
    assert "line 8: unknown field(s) api_key" in errors[3]
    records = result.lines()
    results = {r["line"]: r for r in records if r.get("event") == "result"}
    assert set(results) == {1, 6, 7}
    assert all(r["ok"] for r in results.values())
    assert results[6]["connection"] == "connected"
    links = [r for r in records if r.get("event") == "link"]
    assert {link["org"] for link in links} == {"acme", "globex"}
    assert records[-1] == {
        "event": "summary",
        "jobs": 3,
        "connected": 3,
        "synced": 3,
        "ok": 3,
        "bad_lines": 4,
    }
    assert "slack" in scripted.organization(OTHER_KEY).connections
    assert "slack" not in scripted.organization(KEY).connections


async def test_onboard_exits_0_when_every_line_syncs(
    scripted_cli: Callable[..., Any], scripted: FakeOutlit, tmp_path: Path
) -> None:
    """A clean file onboards every line through one monitor and exits 0."""
    jobs = _write_lines(
        tmp_path / "orgs.jsonl",
        {"org": "acme", "provider": "attio"},
        {"org": "acme", "provider": "granola", "config": {"apiKey": SECRET}},
        {"org": "globex", "provider": "gmail", "key_env": "OTHER_ORG_KEY"},
    )

    result = await scripted_cli("onboard", str(jobs), "--interval", "0.01")

    assert result.status == Exit.OK
    assert result.err == ""
    transitions = [r for r in result.lines() if r.get("event") == "transition"]
    assert {(t["org"], t["kind"]) for t in transitions if t["terminal"]} == {
        ("acme", "connection"),
        ("acme", "sync"),
        ("globex", "connection"),
        ("globex", "sync"),
    }


async def test_onboard_records_a_refused_connection(
    scripted_cli: Callable[..., Any], tmp_path: Path
) -> None:
    """A line the API refuses is reported in the summary and fails the run."""
    jobs = _write_lines(
        tmp_path / "orgs.jsonl",
        {"org": "acme", "provider": "stripe"},
        {"org": "acme", "provider": "clerk", "config": {"secretKey": SECRET}},
    )

    result = await scripted_cli("onboard", str(jobs), "--interval", "0.01")

    assert result.status == Exit.FAILED
    results = [r for r in result.lines() if r.get("event") == "result"]
    assert results[0]["connection"] == "error"
    assert results[0]["connection_error"].startswith("BadRequestError")
    assert results[1]["ok"] is True


async def test_demo_runs_to_completion(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`demo` onboards every provider with no key set and ends with a summary."""
    monkeypatch.delenv("OUTLIT_API_KEY", raising=False)
    started = time.monotonic()

    status = await anyio.to_thread.run_sync(
        main, ["demo", "--speed", "20", "--seed", "5", "--orgs", "4"]
    )

    assert status == Exit.OK
    assert time.monotonic() - started < 10
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records[0]["event"] == "demo"
    results = [r for r in records if r["event"] == "result"]
    assert {r["provider"] for r in results} == {
        "hubspot",
        "attio",
        "slack",
        "fireflies",
        "granola",
        "google-calendar",
        "google-mail",
        "posthog",
        "stripe",
        "supabase",
        "clerk",
        "pylon",
    }
    assert {r["org"] for r in results} == {"acme", "globex", "initech", "umbrella"}
    assert all(r["connection"] != "pending" for r in results)
    assert records[-1]["event"] == "summary"
    assert records[-1]["jobs"] == len(results)


async def test_demo_table_shows_the_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With tables, the demo draws its progress and a summary table."""
    status = await anyio.to_thread.run_sync(
        main, ["demo", "--table", "--speed", "30", "--seed", "1", "--orgs", "2"]
    )

    out = capsys.readouterr().out
    assert status == Exit.OK
    assert "Summary" in out
    assert "connected" in out
    assert "outlit-async sandbox" in out


async def test_demo_hides_its_credentials_and_shows_every_outcome(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    The demo never prints the made-up credentials it sends, and every run shows
    an approved, a denied and an abandoned session, whatever the seed.
    """
    sent: list[str] = []
    make_config = _demo._config

    def recording(capability: Capability | None) -> dict[str, str] | None:
        config = make_config(capability)
        if config is not None and capability is not None:
            sent.extend(
                config[field.key]
                for field in capability.required_fields
                if field.secret
            )
        return config

    monkeypatch.setattr(_demo, "_config", recording)
    monkeypatch.delenv("OUTLIT_API_KEY", raising=False)

    for argv in [
        ["demo", "--json", "--speed", "20", "--seed", "1", "--orgs", "1"],
        ["demo", "--json", "--speed", "20", "--seed", "2", "--orgs", "1"],
        ["demo", "--json", "--speed", "20", "--seed", "3", "--orgs", "1"],
        ["demo", "--table", "--speed", "20", "--seed", "8", "--orgs", "1"],
    ]:
        sent.clear()
        status = await anyio.to_thread.run_sync(main, argv)
        captured = capsys.readouterr()

        assert status == Exit.OK
        assert len(sent) >= 7, argv
        for credential in sent:
            assert credential not in captured.out + captured.err, argv
        assert "ok_demo_" not in captured.out + captured.err
        if "--json" in argv:
            records = [json.loads(line) for line in captured.out.splitlines()]
            outcomes = {r["connection"] for r in records if r["event"] == "result"}
            assert {"connected", "failed", "expired"} <= outcomes, argv
        else:
            assert "expired" in captured.out and "failed" in captured.out


async def test_without_rich_tables_fall_back_to_json(
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without rich, `--table` says how to install it and prints JSON instead."""
    monkeypatch.setitem(sys.modules, "rich", None)

    result = await cli("--table", "list")

    assert result.status == Exit.OK
    assert "pip install 'outlit-async[cli]'" in result.err
    assert len(result.lines()) == 12


def _python(*code: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        **kwargs,
    )


def test_importing_the_package_or_the_cli_does_not_import_rich() -> None:
    """The library keeps its five dependencies: rich loads only to draw."""
    process = _python(
        "-c",
        "import sys, outlit_async, outlit_async.cli; "
        "from outlit_async.cli import _routes, _watch, _onboard; "
        "print('rich' in sys.modules)",
    )
    out, err = process.communicate(timeout=30)

    assert process.returncode == 0, err
    assert out.strip() == "False"


@pytest.fixture
def sandbox() -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    process = _python("-m", "outlit_async", "sandbox", "--port", "0")
    try:
        assert process.stdout is not None
        exports = {}
        for _ in range(2):
            name, _, value = process.stdout.readline().strip().partition("=")
            exports[name.removeprefix("export ")] = value
        yield process, exports
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _http(
    method: str, url: str, key: str | None = None, body: object = None
) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, data, timeout=5) as answer:
        return answer.status, answer.read().decode()


def test_sandbox_prints_its_url_and_serves_until_interrupted(
    sandbox: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    """`python -m outlit_async sandbox` prints exports, serves, exits 0 on Ctrl-C."""
    process, exports = sandbox
    url, key = exports["OUTLIT_BASE_URL"], exports["OUTLIT_API_KEY"]
    assert url.startswith("http://127.0.0.1:")
    assert key == "ok_sandbox_key"

    status, listed = _http("GET", f"{url}/api/integrations", key)
    _, opened = _http(
        "POST", f"{url}/api/integrations/connect", key, {"provider": "slack"}
    )
    connect_url = json.loads(opened)["connectUrl"]
    _, page = _http("GET", connect_url)
    _, approved = _http("POST", f"{connect_url}/approve")
    session_id = connect_url.rsplit("/", 1)[1]
    _, polled = _http(
        "GET", f"{url}/api/integrations/connect/status?sessionId={session_id}", key
    )
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=10)

    assert status == 200
    assert len(json.loads(listed)["items"]) == 12
    assert "Slack" in page and 'id="approve"' in page and 'id="deny"' in page
    assert "Slack connected" in approved
    assert json.loads(polled)["status"] == "connected"
    assert process.returncode == 0
    assert "POST /api/integrations/connect 200" in err


async def test_the_connect_page_refuses_a_decision_by_get(fake: FakeOutlit) -> None:
    """Approve or Deny by GET (a prefetch) answers 405; the session stays pending."""
    session_id = fake.create_session("slack")
    connect_url = f"{fake.url}/connect/{session_id}"

    async with aiohttp.ClientSession() as browser:
        for action in ("approve", "deny"):
            async with browser.get(f"{connect_url}/{action}") as answer:
                assert answer.status == 405
                assert answer.headers["Allow"] == "POST"
                assert "Use the buttons" in await answer.text()
            assert fake.session(session_id).status == "pending"
        async with browser.get(connect_url) as page:
            assert page.status == 200
            assert 'method="post"' in await page.text()
        async with browser.post(connect_url) as posted:
            assert posted.status == 405
            assert posted.headers["Allow"] == "GET, HEAD"
        async with browser.post(f"{connect_url}/approve") as approved:
            assert approved.status == 200

    assert fake.session(session_id).status == "connected"


async def test_ctrl_c_exits_130(fake: FakeOutlit) -> None:
    """Interrupting a running `wait` exits 130 and says so on one line."""
    session_id = fake.create_session("hubspot")
    environ = {**os.environ, "OUTLIT_API_KEY": KEY, "OUTLIT_BASE_URL": fake.url}
    process = _python(
        "-m", "outlit_async", "wait", session_id, "--interval", "0.05", env=environ
    )
    assert process.stdout is not None

    with anyio.fail_after(20):
        while not fake.session(session_id).polls:  # noqa: ASYNC110
            await anyio.sleep(0.02)
    process.send_signal(signal.SIGINT)
    out, err = await anyio.to_thread.run_sync(process.communicate)

    assert process.returncode == Exit.INTERRUPTED
    assert err.strip() == "outlit-async: interrupted"
    assert KEY not in out + err
