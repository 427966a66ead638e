"""
``python -m benchmarks``: every workload, every contender, one table and one JSON file.

The fake server runs in a process of its own, and each contender's run in a
fresh worker process, so the figures are the client's alone. See
``benchmarks/README.md`` for what each workload and figure means.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._report import check_targets, render
from ._run import ROOT, Options, run_all

WORKLOADS = ("sessions", "idle", "sync", "decode", "instructions")
DEFAULT_WORKLOADS = ("sessions", "idle", "sync", "decode")


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part.replace("_", "")) for part in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes such as 100,1000,10000, got {text!r}"
        ) from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes must be whole numbers of 1 or more")
    return sizes


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload {', '.join(unknown) or text!r}; "
            f"choose from {', '.join(WORKLOADS)}"
        )
    return names


def _parser() -> argparse.ArgumentParser:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Measure the SDK's cost per poll next to a bare aiohttp loop, an httpx "
            "loop and a one-at-a-time loop, against a fake server in its own process."
        ),
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=defaults.sizes,
        help="numbers of sessions to watch at once (default: 100,1000,10000)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=defaults.repeats,
        help=f"runs of each contender per size; medians are reported "
        f"(default: {defaults.repeats})",
    )
    parser.add_argument(
        "--organizations",
        type=int,
        default=defaults.organizations,
        help=f"organisations in the sync fleet (default: {defaults.organizations})",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=defaults.interval,
        help=f"poll interval of the sessions and sync workloads, in seconds "
        f"(default: {defaults.interval})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=defaults.concurrency,
        help=f"requests in flight at once, for every contender "
        f"(default: {defaults.concurrency})",
    )
    parser.add_argument(
        "--httpx-max",
        type=int,
        default=defaults.httpx_max,
        help=f"largest size the httpx loop runs at; it is slow to watch "
        f"(default: {defaults.httpx_max:_})",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="seed of the session scripts"
    )
    parser.add_argument(
        "--workloads",
        type=_names,
        default=list(DEFAULT_WORKLOADS),
        help=f"which workloads to run, of {','.join(WORKLOADS)}; 'instructions' "
        f"counts them under valgrind's callgrind, which takes a few minutes more "
        f"(default: {','.join(DEFAULT_WORKLOADS)})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: sizes 20,100, one repeat, 50 organisations",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the JSON results "
        "(default: benchmarks/results/<UTC time>.json)",
    )
    parser.add_argument("--no-output", action="store_true", help="print the table only")
    return parser


def _options(args: argparse.Namespace) -> Options:
    for name in ("repeats", "organizations", "concurrency"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name} must be 1 or more")
    if args.interval <= 0:
        raise SystemExit("--interval must be above zero")
    options = Options(
        sizes=args.sizes,
        repeats=args.repeats,
        interval=args.interval,
        concurrency=args.concurrency,
        seed=args.seed,
        organizations=args.organizations,
        httpx_max=args.httpx_max,
        workloads=args.workloads,
    )
    if args.quick:
        options.sizes = [20, 100]
        options.repeats = 1
        options.organizations = 50
        options.decode_rounds = 3
        options.instruction_sessions = (20, 100)
        options.instruction_organizations = (10, 50)
    return options


def machine() -> dict[str, Any]:
    """
    What the figures were measured on.
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    import os

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
    }


def _versions() -> dict[str, str]:
    from importlib import metadata

    names = ("outlit-async", "aiohttp", "anyio", "attrs", "cattrs", "httpx")
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = _options(args)
    started = datetime.now(timezone.utc)
    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    results = run_all(options)
    results["run"] = {
        "started": started.isoformat(timespec="seconds"),
        "seconds": round((datetime.now(timezone.utc) - started).total_seconds(), 1),
        "command": command.strip(),
        "machine": machine(),
        "versions": _versions(),
    }
    results["targets"] = check_targets(results)
    print(render(results))
    if not args.no_output:
        path = args.output or (
            ROOT
            / "benchmarks"
            / "results"
            / f"{started.strftime('%Y-%m-%dT%H%M%SZ')}.json"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"\nresults written to {path}")
    return 1 if results["faults"] else 0


if __name__ == "__main__":
    sys.exit(main())
