"""The report: a Markdown table on stdout, derived ratios, and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .phases import Row

COLUMNS = (
    ("phase", "phase"),
    ("variant", "variant"),
    ("jobs", "jobs"),
    ("workers", "workers"),
    ("ours", "ours /s"),
    ("raw", "raw /s"),
    ("ratio", "ours/raw"),
    ("sync", "sync /s"),
    ("sync_ratio", "ours/sync"),
    ("ours_p50_ms", "p50 ms"),
    ("ours_p99_ms", "p99 ms"),
    ("raw_p50_ms", "raw p50"),
    ("raw_p99_ms", "raw p99"),
    ("ours_cpu_us", "CPU µs/job"),
    ("raw_cpu_us", "raw CPU µs/job"),
    ("sync_cpu_us", "sync CPU µs/job"),
    ("seconds", "seconds"),
    ("peak_rss_mb", "peak RSS MB"),
    ("check", "check"),
)


def _fmt(value: Any, key: str) -> str:
    if value is None:
        return ""
    if key in ("ratio", "sync_ratio"):
        return f"{value:.2f}"
    if key == "seconds":
        return f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.2f}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[Row]) -> str:
    used = [(k, h) for k, h in COLUMNS if any(getattr(r, k) is not None and getattr(r, k) != "" for r in rows)]
    lines = ["| " + " | ".join(h for _, h in used) + " |", "|" + "|".join("---" for _ in used) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(getattr(row, k), k) for k, _ in used) + " |")
    return "\n".join(lines)


def derived(rows: list[Row]) -> dict[str, float]:
    """The ratios the targets are stated in, each from rows of this one run."""
    out: dict[str, float] = {}

    def find(phase: str, prefix: str) -> Row | None:
        return next((r for r in rows if r.phase == phase and r.variant.startswith(prefix)), None)

    for r in rows:
        if r.ratio is not None and r.phase in ("enqueue", "claim+complete", "async enqueue", "async claim+complete"):
            out[f"{r.phase} {r.variant}: ours/raw"] = r.ratio
        if r.sync_ratio is not None:
            out[f"{r.phase} {r.variant}: async/sync ({r.workers.split()[0]} threads)"] = r.sync_ratio
    seq, batch = find("enqueue", "sequential"), find("enqueue", "batch")
    if seq and batch and seq.ours and batch.ours:
        out[f"enqueue {batch.variant} / sequential (ours)"] = batch.ours / seq.ours
        if seq.raw and batch.raw:
            out[f"enqueue {batch.variant} / sequential (raw)"] = batch.raw / seq.raw
    empty = find("finished kept", "0 finished")
    for r in rows:
        if r.phase == "finished kept" and r is not empty and empty and empty.ours and r.ours:
            out[f"claim+complete with {r.variant.split(',')[0]} / with 0"] = r.ours / empty.ours
    waits = [r for r in rows if r.phase == "waiting" and r.ours]
    for r in waits[1:]:
        out[f"claim+complete with {r.variant.split(',')[0]} / with {waits[0].variant.split(',')[0]}"] = (
            r.ours / waits[0].ours  # type: ignore[operator]
        )
    return out


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def meta(url: str, argv: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(argv),
        "url": url,
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "load_average_at_start": load,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {n: _version(n) for n in ("sidequest-sql", "sqlalchemy", "psycopg", "psycopg-binary")},
        **extra,
    }


def write_json(path: str, info: dict[str, Any], rows: list[Row], ratios: dict[str, float], failures: list[str]) -> None:
    data = {
        "meta": info,
        "results": [{**asdict(r), "ratio": r.ratio, "sync_ratio": r.sync_ratio} for r in rows],
        "ratios": ratios,
        "failures": failures,
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")
