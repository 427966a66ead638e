"""
The orchestrator: the fake server, the workloads, a fresh worker per run.

It never measures itself. For each run it opens the sessions or organisations
the run needs, starts ``python -m benchmarks._worker``, reads the figures the
worker prints, and adds what only the server knows: the requests it answered
and the CPU it spent answering them.
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from ._fake import CONNECTION_STATUS, SYNC_STATUS, FakeProcess

ROOT: Final = Path(__file__).resolve().parent.parent
OUTCOMES: Final = ("connected", "failed", "expired")
SESSION_CONTENDERS: Final = ("sdk", "aiohttp", "httpx")
SYNC_CONTENDERS: Final = ("sdk", "aiohttp")
"""The httpx loop costs tens of milliseconds of CPU per poll at this scale."""
FLOOR: Final = "aiohttp"


@dataclass
class Options:
    """
    What a run measures, and how hard.
    """

    sizes: list[int] = field(default_factory=lambda: [100, 1_000, 10_000])
    repeats: int = 3
    interval: float = 0.2
    concurrency: int = 64
    seed: int = 1
    organizations: int = 1_000
    providers: list[str] = field(default_factory=lambda: ["stripe", "posthog", "pylon"])
    sync_after_polls: int = 3
    sequential_subset: int = 20
    httpx_max: int = 1_000
    idle_interval: float = 30.0
    decode_rounds: int = 5
    workloads: list[str] = field(
        default_factory=lambda: ["sessions", "idle", "sync", "decode"]
    )
    instruction_sessions: tuple[int, int] = (200, 1_000)
    instruction_organizations: tuple[int, int] = (100, 500)


def session_scripts(count: int, seed: int) -> list[tuple[str, int]]:
    """
    ``count`` seeded scripts: an outcome, and the poll (1 to 5) that sees it.
    """
    rng = random.Random(seed)
    return [(rng.choice(OUTCOMES), rng.randint(1, 5)) for _ in range(count)]


def transitions_of(after_polls: int) -> int:
    """
    The transitions a watch delivers when its poll ``after_polls`` ends it.
    """
    return 1 if after_polls <= 1 else 2


class Faults(list[str]):
    """
    Every broken expectation of a run; each is also printed at once.
    """

    def note(self, message: str) -> None:
        print(f"FAULT: {message}", file=sys.stderr, flush=True)
        self.append(message)


class Runner:
    """
    Runs workers against one fake server and collects their figures.
    """

    def __init__(
        self, fake: FakeProcess, options: Options, *, worker_cpu: int | None = None
    ) -> None:
        self.fake = fake
        self.options = options
        self.worker_cpu = worker_cpu
        self.faults = Faults()
        self._orgs = 0

    def worker(
        self, spec: dict[str, Any], *, wrap: Sequence[str] = ()
    ) -> dict[str, Any]:
        """
        Run one job in a fresh process; add the server's side of it.

        :param wrap: a command the worker runs under, such as valgrind; its
            standard error is kept as ``wrapper_stderr``.
        """
        before = self.fake.requests()
        server_cpu = self.fake.cpu_seconds()
        done = subprocess.run(
            [*wrap, sys.executable, "-m", "benchmarks._worker"],
            input=json.dumps({**spec, "url": self.fake.url, "cpu": self.worker_cpu}),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": _python_path()},
            check=False,
        )
        server_cpu = self.fake.cpu_seconds() - server_cpu
        if done.returncode != 0:
            raise RuntimeError(
                f"the worker for {spec['workload']}/{spec.get('contender')} "
                f"failed:\n{done.stderr}"
            )
        figures: dict[str, Any] = json.loads(done.stdout)
        if wrap:
            figures["wrapper_stderr"] = done.stderr
        after = self.fake.requests()
        figures["server_cpu_s"] = server_cpu
        if "wall_s" in figures:
            figures["server_util"] = server_cpu / figures["wall_s"]
        figures["requests_by_path"] = {
            path: after[path] - before[path]
            for path in after
            if after[path] != before[path]
        }
        return figures

    def job(self, workload: str, contender: str, **extra: Any) -> dict[str, Any]:
        warmup = self.fake.create_sessions([("connected", 0)])[0]
        return {
            "workload": workload,
            "contender": contender,
            "key": self.fake.api_key,
            "concurrency": self.options.concurrency,
            "interval": self.options.interval,
            "warmup": warmup,
            "sessions": [],
            **extra,
        }

    def sessions_job(
        self, contender: str, scripts: Sequence[tuple[str, int]]
    ) -> dict[str, Any]:
        """
        The job of one sessions run: fresh sessions on the server, with ``scripts``.
        """
        ids = self.fake.create_sessions(scripts)
        return self.job(
            "sessions",
            contender,
            sessions=[
                [i, outcome] for i, (outcome, _) in zip(ids, scripts, strict=True)
            ],
        )

    def sessions_run(
        self, contender: str, scripts: Sequence[tuple[str, int]]
    ) -> dict[str, Any]:
        """
        One run of the sessions workload: fresh sessions with ``scripts``.
        """
        figures = self.worker(self.sessions_job(contender, scripts))
        polls = figures["requests_by_path"].get(CONNECTION_STATUS, 0) - 1
        minimum = sum(after for _, after in scripts)
        expected = sum(transitions_of(after) for _, after in scripts)
        figures.update(
            watches=len(scripts),
            requests=polls,
            minimum_requests=minimum,
            expected_transitions=expected,
            us_per_poll=figures["cpu_s"] / max(polls, 1) * 1e6,
        )
        self._check(f"sessions N={len(scripts)} {contender}", figures)
        return figures

    def sync_job(self, contender: str, organizations: int) -> dict[str, Any]:
        """
        The job of one sync fleet run: fresh organisations, each with the providers.
        """
        providers = self.options.providers
        keys = [f"ok_bench_{self._orgs}_{index}" for index in range(organizations)]
        self._orgs += 1
        self.fake.create_organizations(keys, providers)
        return self.job("sync", contender, organizations=keys, providers=providers)

    def sync_run(self, contender: str, repeat: int) -> dict[str, Any]:
        """
        One run of the sync fleet: fresh organisations, each with the providers.
        """
        options = self.options
        figures = self.worker(self.sync_job(contender, options.organizations))
        watches = options.organizations * len(options.providers)
        polls = figures["requests_by_path"].get(SYNC_STATUS, 0)
        figures.update(
            watches=watches,
            requests=polls,
            minimum_requests=watches * options.sync_after_polls,
            expected_transitions=watches * transitions_of(options.sync_after_polls),
            us_per_poll=figures["cpu_s"] / max(polls, 1) * 1e6,
        )
        self._check(f"sync fleet {contender} repeat {repeat}", figures)
        return figures

    def idle_run(self, contender: str, count: int) -> dict[str, Any]:
        """
        One run of the idle workload: ``count`` sessions that never end.
        """
        ids = self.fake.create_sessions([("pending", 0)] * count)
        spec = self.job(
            "idle",
            contender,
            sessions=[[i, "pending"] for i in ids],
            interval=self.options.idle_interval,
        )
        figures = self.worker(spec)
        figures.update(
            watches=count,
            traced_bytes_per_watch=figures["traced_bytes"] / count,
        )
        if figures["transitions"] != count:
            self.faults.note(
                f"idle N={count} {contender}: {figures['transitions']} first "
                f"observations, expected {count}"
            )
        return figures

    def _check(self, label: str, figures: dict[str, Any]) -> None:
        if figures["transitions"] != figures["expected_transitions"]:
            self.faults.note(
                f"{label}: {figures['transitions']} transitions delivered, "
                f"expected {figures['expected_transitions']}"
            )
        if figures["requests"] != figures["minimum_requests"]:
            self.faults.note(
                f"{label}: {figures['requests']} polls sent, the scripts need "
                f"exactly {figures['minimum_requests']}"
            )
        if (
            figures["mismatches"]
            or sum(figures["ended"].values()) != figures["watches"]
        ):
            self.faults.note(
                f"{label}: watches ended {figures['ended']} with "
                f"{figures['mismatches']} wrong outcomes"
            )

    def decode_bodies(self) -> dict[str, dict[str, str]]:
        """
        One answer of each shape, as the fake server sends it.
        """
        fake = self.fake
        key = f"ok_bench_decode_{self._orgs}"
        self._orgs += 1
        fake.create_organizations([key], ["stripe"])
        pending, failed = fake.create_sessions([("pending", 0), ("failed", 0)])

        def get(path: str, key: str | None = None, **query: str) -> str:
            return fake.raw(
                "GET", f"{path}?{urlencode(query)}" if query else path, key=key
            )

        sync_pending = get(SYNC_STATUS, key, provider="stripe")
        for _ in range(self.options.sync_after_polls):
            sync_done = get(SYNC_STATUS, key, provider="stripe")
        bodies = {
            "connection status, pending": (
                "connection_status",
                get(CONNECTION_STATUS, sessionId=pending),
            ),
            "connection status, failed": (
                "connection_status",
                get(CONNECTION_STATUS, sessionId=failed),
            ),
            "sync status, 3 models pending": ("sync_status", sync_pending),
            "sync status, 3 models synced": ("sync_status", sync_done),
            "integrations list": ("list", get("/api/integrations", key)),
            "capabilities, one provider": (
                "capability",
                get("/api/integrations/capabilities", provider="posthog"),
            ),
            "capabilities, all": (
                "capabilities",
                get("/api/integrations/capabilities"),
            ),
            "connect, browser session": (
                "connect",
                fake.raw(
                    "POST",
                    "/api/integrations/connect",
                    {"provider": "hubspot"},
                    key=key,
                ),
            ),
        }
        return {
            name: {"kind": kind, "raw": raw} for name, (kind, raw) in bodies.items()
        }


def cpu_plan() -> tuple[int | None, int | None]:
    """
    The CPU of the server and the CPU of each worker, or None, None.

    With two CPUs or more, the server and the measured client each get one of
    their own: neither takes the other's CPU or caches, and a client's CPU time
    stops depending on where the scheduler happened to put it.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[-1], cpus[0]


def _python_path() -> str:
    inherited = os.environ.get("PYTHONPATH")
    return os.pathsep.join([inherited, str(ROOT)] if inherited else [str(ROOT)])


def _contenders_at(size: int, options: Options) -> list[str]:
    """
    The contenders of a size: the httpx loop only up to ``options.httpx_max``.
    """
    return [
        name
        for name in SESSION_CONTENDERS
        if name != "httpx" or size <= options.httpx_max
    ]


def _rotated(items: Sequence[str], by: int) -> list[str]:
    by %= len(items)
    return [*items[by:], *items[:by]]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _progress_run(
    label: str, contender: str, repeat: int, figures: dict[str, Any]
) -> None:
    _progress(
        f"{label} {contender:<10} repeat {repeat + 1}: "
        f"{figures['us_per_poll']:7.1f} us/poll, "
        f"{figures['wall_s']:6.2f} s wall, "
        f"server {figures['server_util']:.0%} busy"
    )


def median_figures(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """
    The median of each numeric figure over ``runs``.
    """
    keys = [
        key
        for key, value in runs[0].items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]
    return {
        key: statistics.median(run[key] for run in runs if run.get(key) is not None)
        for key in keys
        if any(run.get(key) is not None for run in runs)
    }


def _paired_ratio(
    runs: Sequence[dict[str, Any]], floor: Sequence[dict[str, Any]], figure: str
) -> float:
    ratios: list[float] = [
        run[figure] / base[figure] for run, base in zip(runs, floor, strict=True)
    ]
    return statistics.median(ratios)


def _summarise(by_contender: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    floor = by_contender.get(FLOOR)
    summary: dict[str, Any] = {}
    for contender, runs in by_contender.items():
        entry: dict[str, Any] = {"runs": runs, "median": median_figures(runs)}
        if floor is not None and "us_per_poll" in runs[0]:
            entry["cpu_per_poll_vs_floor"] = _paired_ratio(runs, floor, "us_per_poll")
        summary[contender] = entry
    return summary


def run_sessions(runner: Runner) -> dict[str, Any]:
    options = runner.options
    results: dict[str, Any] = {}
    smallest = min(options.sizes)
    for size in options.sizes:
        scripts = session_scripts(size, options.seed)
        contenders = _contenders_at(size, options)
        if size == smallest and options.sequential_subset:
            contenders.append("sequential")
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
        for repeat in range(options.repeats):
            for contender in _rotated(contenders, repeat):
                chosen = scripts
                if contender == "sequential":
                    chosen = scripts[: options.sequential_subset]
                figures = runner.sessions_run(contender, chosen)
                runs[contender].append(figures)
                _progress_run(f"sessions N={size:<6}", contender, repeat, figures)
        results[str(size)] = _summarise(runs)
    return results


def run_idle(runner: Runner) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for index, size in enumerate(runner.options.sizes):
        runs: dict[str, list[dict[str, Any]]] = {}
        for contender in _rotated(_contenders_at(size, runner.options), index):
            figures = runner.idle_run(contender, size)
            runs[contender] = [figures]
            _progress(
                f"idle     N={size:<6} {contender:<10}: "
                f"{figures['traced_bytes_per_watch']:7.0f} B/watch traced"
            )
        results[str(size)] = _summarise(runs)
    return results


def run_sync(runner: Runner) -> dict[str, Any]:
    options = runner.options
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SYNC_CONTENDERS}
    for repeat in range(options.repeats):
        for contender in _rotated(SYNC_CONTENDERS, repeat):
            figures = runner.sync_run(contender, repeat)
            runs[contender].append(figures)
            label = f"sync fleet {options.organizations}x{len(options.providers)}"
            _progress_run(label, contender, repeat, figures)
    key = f"{options.organizations}x{len(options.providers)}"
    return {key: _summarise(runs)}


CALLGRIND: Final = (
    "valgrind",
    "--tool=callgrind",
    "--callgrind-out-file=/dev/null",
)
INSTRUCTION_CONTENDERS: Final = ("sdk", "aiohttp")


def _instructions(figures: dict[str, Any]) -> int:
    found = re.search(r"Collected : (\d+)", figures.pop("wrapper_stderr", ""))
    if found is None:
        raise RuntimeError("callgrind reported no instruction count")
    return int(found.group(1))


def run_instructions(runner: Runner) -> dict[str, Any]:
    """
    Instructions per poll of the SDK and the floor, counted by callgrind.

    Each contender runs the sessions workload and the sync fleet at a small and
    a larger size under callgrind; the instructions per poll are the slope
    between the two, which leaves out what does not grow with the polls
    (starting Python, importing, the warm-up request). Unlike CPU time, a count
    of instructions does not move with what else the machine is doing.
    """
    options = runner.options
    results: dict[str, Any] = {}
    low_sessions, high_sessions = options.instruction_sessions
    low_orgs, high_orgs = options.instruction_organizations
    for contender in INSTRUCTION_CONTENDERS:
        counts: dict[str, Any] = {}
        points = []
        for size in (low_sessions, high_sessions):
            spec = runner.sessions_job(contender, session_scripts(size, options.seed))
            figures = runner.worker(spec, wrap=CALLGRIND)
            polls = figures["requests_by_path"].get(CONNECTION_STATUS, 0) - 1
            points.append((polls, _instructions(figures)))
            _progress(f"instructions sessions N={size:<5} {contender:<8}: counted")
        counts["sessions"] = _slope(points)
        points = []
        for orgs in (low_orgs, high_orgs):
            figures = runner.worker(runner.sync_job(contender, orgs), wrap=CALLGRIND)
            polls = figures["requests_by_path"].get(SYNC_STATUS, 0)
            points.append((polls, _instructions(figures)))
            _progress(f"instructions sync {orgs:<5} orgs {contender:<8}: counted")
        counts["sync"] = _slope(points)
        results[contender] = counts
    for workload in ("sessions", "sync"):
        floor = results[FLOOR][workload]["per_poll"]
        for contender in INSTRUCTION_CONTENDERS:
            entry = results[contender][workload]
            entry["vs_floor"] = entry["per_poll"] / floor
    results["sizes"] = {
        "sessions": [low_sessions, high_sessions],
        "organizations": [low_orgs, high_orgs],
    }
    return results


def _slope(points: Sequence[tuple[int, int]]) -> dict[str, Any]:
    (low_polls, low_count), (high_polls, high_count) = points
    return {
        "polls": [low_polls, high_polls],
        "instructions": [low_count, high_count],
        "per_poll": (high_count - low_count) / max(high_polls - low_polls, 1),
    }


def run_decode(runner: Runner) -> dict[str, Any]:
    spec = {
        "workload": "decode",
        "bodies": runner.decode_bodies(),
        "rounds": runner.options.decode_rounds,
    }
    figures = runner.worker(spec)
    figures.pop("server_cpu_s", None)
    figures.pop("requests_by_path", None)
    _progress(f"decode: {len(figures)} shapes")
    return figures


def run_all(options: Options) -> dict[str, Any]:
    """
    Every chosen workload against one fake server; the figures and any faults.
    """
    server_cpu, worker_cpu = cpu_plan()
    results: dict[str, Any] = {
        "settings": asdict(options),
        "cpus": {"server": server_cpu, "worker": worker_cpu},
    }
    with FakeProcess(sync_after_polls=options.sync_after_polls, cpu=server_cpu) as fake:
        runner = Runner(fake, options, worker_cpu=worker_cpu)
        steps = {
            "sessions": run_sessions,
            "idle": run_idle,
            "sync": run_sync,
            "decode": run_decode,
            "instructions": run_instructions,
        }
        for name, step in steps.items():
            if name in options.workloads:
                results[name] = step(runner)
    results["faults"] = list(runner.faults)
    return results
