"""
One measured process: ``python -m benchmarks._worker < job.json``.

It runs one contender on one workload and prints its figures as JSON. Each run
gets a fresh process, so its CPU time, peak RSS and allocations are its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from ._contenders import CONTENDERS, Job, Meter
from ._decode import decode_figures


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """
    Run the job ``spec`` describes; answer its figures.
    """
    if spec["workload"] == "decode":
        return decode_figures(spec["bodies"], rounds=spec["rounds"])
    contender = CONTENDERS[spec["workload"], spec["contender"]]
    meter = Meter(trace=spec["workload"] == "idle")
    tally = asyncio.run(contender(Job(spec), meter))
    return {**meter.figures, **tally.figures()}


def main() -> int:
    spec = json.load(sys.stdin)
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {spec["cpu"]})
    json.dump(run(spec), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
