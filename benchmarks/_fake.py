"""
The fake Outlit API in a process of its own, so the measured process is the client.

:class:`FakeProcess` starts ``python -m outlit_async.testing``, reads the URL and
key it prints, and talks to its control routes with the standard library: the
orchestrating process opens no event loop and is never measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final

CONNECTION_STATUS: Final = "/api/integrations/connect/status"
SYNC_STATUS: Final = "/api/integrations/sync-status"

_TICKS: Final = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class FakeProcess:
    """
    A running ``python -m outlit_async.testing`` and its control routes.

    :param sync_after_polls: the sync-status poll that first sees a new
        connection's models succeed.
    :param cpu: the one CPU the server runs on, if it is pinned.
    """

    def __init__(self, *, sync_after_polls: int, cpu: int | None = None) -> None:
        self._cpu = cpu
        self._args = [
            sys.executable,
            "-m",
            "outlit_async.testing",
            "--port",
            "0",
            "--sync-after-polls",
            str(sync_after_polls),
        ]
        self._process: subprocess.Popen[str] | None = None
        self.url = ""
        self.api_key = ""

    def __enter__(self) -> FakeProcess:
        process = self._process = subprocess.Popen(
            self._args, stdout=subprocess.PIPE, text=True
        )
        if self._cpu is not None:
            os.sched_setaffinity(process.pid, {self._cpu})
        assert process.stdout is not None
        found: dict[str, str] = {}
        while len(found) < 2:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("the fake server exited before it listened")
            name, _, value = line.strip().partition("=")
            found[name] = value
        self.url = found["OUTLIT_BASE_URL"]
        self.api_key = found["OUTLIT_API_KEY"]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def cpu_seconds(self) -> float:
        """
        User plus system CPU the server process has used so far.
        """
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def requests(self) -> Counter[str]:
        """
        Requests the server has answered, by path.
        """
        return Counter(self._call("GET", "/_fake/stats")["requests"])

    def create_sessions(
        self,
        scripts: Sequence[tuple[str, int]],
        *,
        provider: str = "hubspot",
    ) -> list[str]:
        """
        Open one session per ``(outcome, after_polls)`` script; answer their ids.

        An outcome of ``"pending"`` opens a session that never ends. Sessions
        with the same script are opened in one request.
        """
        groups: dict[tuple[str, int], list[int]] = {}
        for index, script in enumerate(scripts):
            groups.setdefault(script, []).append(index)
        ids = [""] * len(scripts)
        for (outcome, after_polls), indexes in groups.items():
            body: dict[str, Any] = {"provider": provider, "count": len(indexes)}
            if outcome != "pending":
                body.update(outcome=outcome, afterPolls=after_polls)
            answer = self._call("POST", "/_fake/sessions", body)
            for index, session_id in zip(indexes, answer["sessionIds"], strict=True):
                ids[index] = session_id
        return ids

    def create_organizations(
        self, api_keys: Sequence[str], providers: Sequence[str]
    ) -> None:
        """
        Add one organisation per key, each with ``providers`` connected.
        """
        body = {"apiKeys": list(api_keys), "providers": list(providers)}
        self._call("POST", "/_fake/organizations", body)

    def raw(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> str:
        """
        Send one request with ``key`` (the default organisation's when None).

        :return: the answer's body, as text.
        """
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {key or self.api_key}",
                "Content-Type": "application/json",
            },
            method=method,
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            text: str = response.read().decode()
            return text

    def _call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> Any:
        return json.loads(self.raw(method, path, body))
