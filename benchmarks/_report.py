"""
The targets, checked against one run's figures, and the table that shows them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

FLOOR: Final = "aiohttp"
CPU_VS_FLOOR: Final = 1.15
FLAT_WITH_N: Final = 1.2
BYTES_PER_IDLE_WATCH: Final = 5 * 1024


def _target(name: str, value: float | None, bound: str, met: bool) -> dict[str, Any]:
    return {"target": name, "value": value, "bound": bound, "met": met}


def _sizes(section: Mapping[str, Any]) -> list[int]:
    return sorted(int(size) for size in section)


def idle_slopes(idle: Mapping[str, Any]) -> dict[str, float]:
    """
    Bytes each more idle watch holds, per contender: the tracemalloc slope.

    Each contender's slope runs from the smallest to the largest size it ran
    at; with one size only, it is the bytes held per watch at that size.
    """
    sizes = _sizes(idle)
    slopes = {}
    for contender in idle[str(sizes[0])]:
        ran = [size for size in sizes if contender in idle[str(size)]]
        low, high = ran[0], ran[-1]
        held_high = _held(idle, high, contender)
        if low == high:
            slopes[contender] = held_high / high
        else:
            held_low = _held(idle, low, contender)
            slopes[contender] = (held_high - held_low) / (high - low)
    return slopes


def check_targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """
    Each target of the benchmarks, with what this run measured.
    """
    targets = []
    sessions = results.get("sessions", {})
    for size in _sizes(sessions):
        ratio = sessions[str(size)]["sdk"]["cpu_per_poll_vs_floor"]
        targets.append(
            _target(
                f"sessions N={size:,}: SDK CPU per poll / floor",
                ratio,
                f"<= {CPU_VS_FLOOR}",
                ratio <= CPU_VS_FLOOR,
            )
        )
    for key, fleet in results.get("sync", {}).items():
        ratio = fleet["sdk"]["cpu_per_poll_vs_floor"]
        targets.append(
            _target(
                f"sync fleet {key}: SDK CPU per poll / floor",
                ratio,
                f"<= {CPU_VS_FLOOR}",
                ratio <= CPU_VS_FLOOR,
            )
        )
    sizes = _sizes(sessions)
    if len(sizes) > 1:
        first = sessions[str(sizes[0])]["sdk"]["median"]["us_per_poll"]
        last = sessions[str(sizes[-1])]["sdk"]["median"]["us_per_poll"]
        targets.append(
            _target(
                f"SDK CPU per poll, N={sizes[-1]:,} / N={sizes[0]:,}",
                last / first,
                f"<= {FLAT_WITH_N}",
                last / first <= FLAT_WITH_N,
            )
        )
    runs = [
        (label, run) for label, run in _sdk_runs(results) if "minimum_requests" in run
    ]
    if runs:
        extra = sum(run["requests"] - run["minimum_requests"] for _, run in runs)
        targets.append(
            _target(
                f"SDK polls beyond the scripts' minimum, over {len(runs)} runs",
                extra,
                "== 0",
                extra == 0,
            )
        )
    idle = results.get("idle")
    if idle:
        slopes = idle_slopes(idle)
        beyond = slopes["sdk"] - slopes[FLOOR]
        targets.append(
            _target(
                "bytes per idle watch beyond the floor's",
                beyond,
                f"< {BYTES_PER_IDLE_WATCH}",
                beyond < BYTES_PER_IDLE_WATCH,
            )
        )
    counted = results.get("instructions")
    if counted:
        for workload, label in (("sessions", "sessions"), ("sync", "sync fleet")):
            ratio = counted["sdk"][workload]["vs_floor"]
            targets.append(
                _target(
                    f"{label}: SDK instructions per poll / floor",
                    ratio,
                    f"<= {CPU_VS_FLOOR}",
                    ratio <= CPU_VS_FLOOR,
                )
            )
    for label, section in _workload_sections(results):
        sdk = section["sdk"]["median"]["us_per_poll"]
        httpx = section.get("httpx", {}).get("median", {}).get("us_per_poll")
        if httpx is not None:
            targets.append(
                _target(
                    f"{label}: SDK CPU per poll / httpx loop",
                    sdk / httpx,
                    "< 1",
                    sdk < httpx,
                )
            )
    delivered = all(
        run["transitions"] == run["expected_transitions"]
        for _, run in _all_runs(results)
    )
    targets.append(
        _target(
            "every contender delivered every expected transition",
            None,
            "all runs",
            delivered and not results.get("faults"),
        )
    )
    return targets


def _workload_sections(results: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    for size in _sizes(results.get("sessions", {})):
        yield f"sessions N={size:,}", results["sessions"][str(size)]
    for key, fleet in results.get("sync", {}).items():
        yield f"sync fleet {key}", fleet


def _all_runs(results: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    for label, section in _workload_sections(results):
        for contender, entry in section.items():
            for run in entry["runs"]:
                yield f"{label} {contender}", run


def _sdk_runs(results: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    for label, run in _all_runs(results):
        if label.endswith(" sdk"):
            yield label, run


def _table(head: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(cell) for cell in column) for column in zip(head, *rows, strict=True)
    ]

    def line(cells: list[str]) -> str:
        padded = [
            cell.ljust(width) if index == 0 else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (width + 1) + ("-" if index == 0 else ":")
            for index, width in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(head), rule, *(line(row) for row in rows)])


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _poll_rows(label: str, section: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for contender, entry in section.items():
        median = entry["median"]
        rows.append(
            [
                f"{label} {contender}",
                f"{median['us_per_poll']:.0f}",
                _ratio(entry.get("cpu_per_poll_vs_floor")),
                f"{median['cpu_s']:.2f}",
                f"{median['wall_s']:.2f}",
                f"{median['requests']:,.0f} / {median['minimum_requests']:,.0f}",
                f"{median['transitions']:,.0f} / {median['expected_transitions']:,.0f}",
                f"{median['peak_rss_kib'] / 1024:.0f}",
            ]
        )
    return rows


def render(results: Mapping[str, Any]) -> str:
    """
    The run as Markdown: one table per workload, then the targets.
    """
    parts = []
    run = results.get("run")
    if run:
        machine = run["machine"]
        parts.append(
            f"{run['started']} · Python {machine['python']} · {machine['cpu']} "
            f"({machine['cpus']} CPUs) · `{run['command']}` · {run['seconds']:.0f} s"
        )
    rows: list[list[str]] = []
    for label, section in _workload_sections(results):
        rows.extend(_poll_rows(label, section))
    if rows:
        parts.append(
            _table(
                [
                    "workload, contender",
                    "CPU µs/poll",
                    "vs floor",
                    "CPU s",
                    "wall s",
                    "polls / minimum",
                    "transitions / expected",
                    "peak RSS MiB",
                ],
                rows,
            )
        )
    idle = results.get("idle")
    if idle:
        sizes = _sizes(idle)
        slopes = idle_slopes(idle)
        head = [
            "idle watches",
            *(f"B/watch held, N={size:,}" for size in sizes),
            "B per more watch",
            "beyond floor",
        ]
        idle_rows = []
        for contender in slopes:
            idle_rows.append(
                [
                    contender,
                    *(
                        f"{_held(idle, size, contender) / size:,.0f}"
                        if contender in idle[str(size)]
                        else ""
                        for size in sizes
                    ),
                    f"{slopes[contender]:,.0f}",
                    f"{slopes[contender] - slopes[FLOOR]:+,.0f}",
                ]
            )
        parts.append(_table(head, idle_rows))
    decode = results.get("decode")
    if decode:
        parts.append(
            _table(
                ["answer", "bytes", "json.loads µs", "+ SDK models µs", "ratio"],
                [
                    [
                        name,
                        f"{shape['bytes']:,}",
                        f"{shape['json_us']:.1f}",
                        f"{shape['sdk_us']:.1f}",
                        f"{shape['ratio']:.1f}x",
                    ]
                    for name, shape in decode.items()
                ],
            )
        )
    counted = results.get("instructions")
    if counted:
        sizes = counted["sizes"]
        low, high = sizes["sessions"]
        orgs_low, orgs_high = sizes["organizations"]
        where = {
            "sessions": f"sessions, N={low:,} to {high:,}",
            "sync": f"sync fleet, {orgs_low:,} to {orgs_high:,} organisations",
        }
        parts.append(
            _table(
                ["instructions (callgrind)", "per poll", "vs floor", "polls"],
                [
                    [
                        f"{where[workload]} {contender}",
                        f"{entry[workload]['per_poll']:,.0f}",
                        _ratio(entry[workload]["vs_floor"]),
                        " to ".join(f"{p:,}" for p in entry[workload]["polls"]),
                    ]
                    for workload in ("sessions", "sync")
                    for contender, entry in counted.items()
                    if contender != "sizes"
                ],
            )
        )
    targets = results.get("targets")
    if targets:
        parts.append(
            _table(
                ["target", "measured", "bound", "met"],
                [
                    [
                        target["target"],
                        _measured(target["value"]),
                        target["bound"],
                        "yes" if target["met"] else "NO",
                    ]
                    for target in targets
                ],
            )
        )
    faults = results.get("faults")
    if faults:
        parts.append("Broken expectations:\n" + "\n".join(f"- {f}" for f in faults))
    return "\n\n".join(parts)


def _held(idle: Mapping[str, Any], size: int, contender: str) -> float:
    held: float = idle[str(size)][contender]["median"]["traced_bytes"]
    return held


def _measured(value: float | None) -> str:
    if value is None:
        return ""
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
