"""The Markdown table (medians over rounds, our/trackio ratios) and notes on anything amiss."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

LABEL = {"ours": "trackio-integrations", "trackio": "trackio"}
Raw = dict[str, dict[str, list[dict[str, Any]]]]


def _get(result: dict[str, Any], path: str) -> Any:
    value: Any = result
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def median(results: list[dict[str, Any]], path: str) -> float | None:
    values = [v for r in results if isinstance(v := _get(r, path), (int, float))]
    return statistics.median(values) if values else None


def completeness(results: list[dict[str, Any]]) -> str:
    """'20,000/20,000 in 5/5 rounds, 0 duplicates' (the worst round shown when any fell short)."""
    checks = [r["server"] for r in results if isinstance(r.get("server"), dict)]
    if not checks:
        return "n/a"
    expected = checks[0]["expected"]
    complete = sum(c["missing"] == 0 for c in checks)
    worst = min(c["distinct_steps"] for c in checks)
    dups = sum(c["duplicates"] for c in checks)
    text = f"{complete}/{len(checks)} rounds complete"
    if complete < len(checks):
        text += f" (worst {worst:,}/{expected:,})"
    return text + (f", {dups} duplicates" if dups else "")


ROWS: list[tuple[str, str, str, str]] = [
    # (measurement, result path, row label, unit)
    ("cost", "p50_us", "log() p50, flat out, responsive server", "us"),
    ("cost", "p99_us", "log() p99, flat out, responsive server", "us"),
    ("paced", "p50_us", "log() p50, {rate}/s, responsive server", "us"),
    ("paced", "p99_us", "log() p99, {rate}/s, responsive server", "us"),
    ("paced", "max_us", "log() max, {rate}/s, responsive server", "us"),
    ("slow", "p50_us", "log() p50, {rate}/s, every request {delay} late", "us"),
    ("slow", "p99_us", "log() p99, {rate}/s, every request {delay} late", "us"),
    ("slow", "max_us", "log() max, {rate}/s, every request {delay} late", "us"),
    ("deliver", "logged_s", "{points} points: log() loop", "s"),
    ("deliver", "delivered_s", "{points} points: from first log() to all on the server", "s"),
    ("deliver", "finish_returned_s", "{points} points: from first log() to finish() returned", "s"),
    ("outage", "log_s", "outage, {outage_points} points: log() loop", "s"),
    ("outage", "rss_growth_mib", "outage, {outage_points} points: RSS growth", "MiB"),
    ("outage", "rss_settled_growth_mib", "outage: RSS growth 2 s after the loop", "MiB"),
    ("outage", "peak_growth_mib", "outage: peak RSS (VmHWM) growth", "MiB"),
    ("outage", "kept_points", "outage: points kept on local disk 2 s after the loop", "points"),
    ("outage", "disk_mib", "outage: local disk used", "MiB"),
    (
        "outage_start",
        "log_s",
        "server down from the start, {outage_points} points: log() loop",
        "s",
    ),
    ("outage_start", "rss_growth_mib", "server down from the start: RSS growth", "MiB"),
    ("outage_start", "kept_points", "server down from the start: points kept on disk", "points"),
    ("cold", "wall_s", "cold start, server: import, init, log 1 point, finish", "s"),
    ("rates", "r100.requests_per_1k", "requests per 1,000 points at 100 points/s", "n"),
    ("rates", "r1000.requests_per_1k", "requests per 1,000 points at 1,000 points/s", "n"),
    ("rates", "r10000.requests_per_1k", "requests per 1,000 points at 10,000 points/s", "n"),
    ("rates", "r100.server_cpu_s_per_1k", "server CPU per 1,000 points at 100 points/s", "s"),
    ("rates", "r1000.server_cpu_s_per_1k", "server CPU per 1,000 points at 1,000 points/s", "s"),
    ("rates", "r10000.server_cpu_s_per_1k", "server CPU per 1,000 points at 10,000 points/s", "s"),
    ("trainer", "none_s", "Trainer, {steps} steps: train_runtime without reporting", "s"),
    ("trainer", "runtime_s", "Trainer, {steps} steps: train_runtime with reporting", "s"),
    ("trainer", "over_none", "Trainer: with reporting / without (goal <= 1.03)", "x"),
    ("cold_local", "wall_s", "cold start, local storage (no server), same steps", "s"),
]


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "failed"
    if unit == "us":
        return f"{value:,.1f} µs" if value < 100 else f"{value:,.0f} µs"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "points":
        return f"{value:,.0f}"
    if unit == "n":
        return f"{value:,.1f}"
    if unit == "x":
        return f"{value:.3f}"
    return f"{value:,.1f} {unit}"


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "-"
    return f"{ours / theirs:.2f}"


def table(raw: Raw, args: argparse.Namespace) -> str:
    names = {
        "points": f"{args.points:,}",
        "outage_points": f"{args.outage_points:,}",
        "rate": f"{args.slow_rate:,.0f}",
        "delay": f"{args.delay * 1000:.0f} ms",
        "steps": f"{args.trainer_steps:,}",
    }
    lines = [
        f"| Measurement (median of rounds) | {LABEL['ours']} | {LABEL['trackio']} | ours/trackio |",
        "|---|---:|---:|---:|",
    ]
    for measurement, path, label, unit in ROWS:
        if measurement not in raw:
            continue
        ours = median(raw[measurement]["ours"], path)
        theirs = median(raw[measurement]["trackio"], path)
        share = ratio(ours, theirs) if unit != "points" else ""  # a count, not a cost
        lines.append(
            f"| {label.format(**names)} | {fmt(ours, unit)} | {fmt(theirs, unit)} | {share} |"
        )
    for measurement, label in (
        ("cost", "all points on the server: flat out"),
        ("paced", "all points on the server: paced, responsive"),
        ("slow", "all points on the server: paced, {delay} late"),
        ("deliver", "all points on the server: delivery run"),
    ):
        label = label.format(**names)
        if measurement in raw:
            lines.append(
                f"| {label} | {completeness(raw[measurement]['ours'])} "
                f"| {completeness(raw[measurement]['trackio'])} | |"
            )
    return "\n".join(lines)


def notes(raw: Raw) -> list[str]:
    """Things worth a look: failures, points missing at exit or for good, duplicates."""
    out = []
    for measurement, by_client in raw.items():
        for client, results in by_client.items():
            for i, r in enumerate(results):
                if "error" in r:
                    out.append(f"{measurement}/{client} round {i + 1}: FAILED: {r['error']}")
                    continue
                check = r.get("server")
                if isinstance(check, dict):
                    if check["missing"]:
                        out.append(
                            f"{measurement}/{client} round {i + 1}: {check['missing']:,} of "
                            f"{check['expected']:,} points never reached the server"
                        )
                    elif check["at_exit"] < check["expected"]:
                        out.append(
                            f"{measurement}/{client} round {i + 1}: only {check['at_exit']:,} of "
                            f"{check['expected']:,} on the server when the process exited "
                            "(the rest arrived later)"
                        )
                    if check["duplicates"]:
                        out.append(
                            f"{measurement}/{client} round {i + 1}: {check['duplicates']} duplicates"
                        )
                if r.get("finish_ok") is False:
                    out.append(f"{measurement}/{client} round {i + 1}: finish() reported failure")
    return out
