"""What a benchmark run shows: the Markdown table (medians over rounds, our/trackio ratios), the
goals met or not, problems that fail the run, and notes on anything else amiss.

The performance page's results (docs/performance.md) are rendered from a saved run, never typed by hand:

    python bench/report.py                      # print it from bench/results.json
    python bench/report.py --readme docs/performance.md   # rewrite it there, between the bench markers

``make bench`` does both; ``tests/test_readme.py`` checks that the page shows what the file holds.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"
BEGIN = "<!-- bench:begin (rendered from bench/results.json by bench/report.py) -->"
END = "<!-- bench:end -->"

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
    ("cold", "import_s", "cold start: importing the library, of the above", "s"),
    ("cold_local", "wall_s", "cold start, local storage (no server), same steps", "s"),
    ("rates", "r100.requests_per_1k", "requests per 1,000 points at 100 points/s", "n"),
    ("rates", "r1000.requests_per_1k", "requests per 1,000 points at 1,000 points/s", "n"),
    ("rates", "r10000.requests_per_1k", "requests per 1,000 points at 10,000 points/s", "n"),
    ("rates", "r100.server_cpu_s_per_1k", "server CPU per 1,000 points at 100 points/s", "s"),
    ("rates", "r1000.server_cpu_s_per_1k", "server CPU per 1,000 points at 1,000 points/s", "s"),
    ("rates", "r10000.server_cpu_s_per_1k", "server CPU per 1,000 points at 10,000 points/s", "s"),
    ("trainer", "none_s", "Trainer, {steps} steps: train_runtime without reporting", "s"),
    ("trainer", "runtime_s", "Trainer, {steps} steps: train_runtime with reporting", "s"),
    ("trainer", "over_none", "Trainer: with reporting / without (goal <= 1.03)", "x"),
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


def _names(args: argparse.Namespace) -> dict[str, str]:
    return {
        "points": f"{args.points:,}",
        "outage_points": f"{args.outage_points:,}",
        "rate": f"{args.slow_rate:,.0f}",
        "delay": f"{args.delay * 1000:.0f} ms",
        "steps": f"{getattr(args, 'trainer_steps', 600):,}",
    }


def table(raw: Raw, args: argparse.Namespace) -> str:
    names = _names(args)
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


def problems(raw: Raw) -> list[str]:
    """What fails the run: a measurement that broke, or our client losing, duplicating or
    failing to finish. (trackio's client falling short is a finding, listed in ``notes``.)"""
    return [text for text, fatal in _findings(raw) if fatal]


def notes(raw: Raw) -> list[str]:
    """Things worth a look that do not fail the run."""
    return [text for text, fatal in _findings(raw) if not fatal]


def _findings(raw: Raw) -> list[tuple[str, bool]]:
    out = []
    for measurement, by_client in raw.items():
        for client, results in by_client.items():
            ours = client == "ours"
            for i, r in enumerate(results):
                where = f"{measurement}/{client} round {i + 1}"
                if "error" in r:
                    out.append((f"{where}: FAILED: {r['error']}", True))
                    continue
                check = r.get("server")
                if isinstance(check, dict):
                    if check["missing"]:
                        out.append(
                            (
                                f"{where}: {check['missing']:,} of {check['expected']:,} points "
                                "never reached the server",
                                ours,
                            )
                        )
                    elif check["at_exit"] < check["expected"]:
                        out.append(
                            (
                                f"{where}: only {check['at_exit']:,} of {check['expected']:,} on "
                                "the server when the process exited (the rest arrived later)",
                                False,
                            )
                        )
                    if check["duplicates"]:
                        out.append((f"{where}: {check['duplicates']} duplicates", ours))
                if r.get("finish_ok") is False:
                    out.append((f"{where}: finish() reported failure", ours))
                kept, logged = r.get("kept_points"), r.get("points")
                if ours and measurement.startswith("outage") and kept is not None and kept < logged:
                    out.append((f"{where}: only {kept:,} of {logged:,} points kept on disk", True))
    return out


# --- the page's section --------------------------------------------------------------------------

GOALS: list[tuple[str, str, str, float, str]] = [
    # (measurement, result path, what, bound, unit): ours must stay at or under the bound
    ("cost", "p50_us", "median `log()` cost for 10 scalars, flat out", 5.0, "us"),
    ("slow", "p99_us", "`log()` p99 while every request is {delay} late", 1000.0, "us"),
    ("outage", "rss_growth_mib", "RSS growth over a {outage_points}-point outage", 40.0, "MiB"),
    ("trainer", "over_none", "a Trainer's train_runtime with TrackioCallback / without", 1.03, "x"),
]


def goals(raw: Raw, args: argparse.Namespace) -> list[str]:
    """One line per goal of the client's design: ours against its bound, met or not."""
    names = _names(args)
    lines = []
    for measurement, path, what, bound, unit in GOALS:
        if measurement not in raw:
            continue
        value = median(raw[measurement]["ours"], path)
        verdict = "met" if value is not None and value <= bound else "**not met**"
        lines.append(
            f"- {what.format(**names)}: {fmt(value, unit)} (goal: at most {fmt(bound, unit)}): "
            f"{verdict}"
        )
    return lines


def machine(results: dict[str, Any]) -> str:
    """Where and how the saved run was measured, in one paragraph."""
    env, params = results["environment"], results["parameters"]
    dirty = " with uncommitted changes" if env.get("dirty") else ""
    return (
        f"Measured at commit `{env['commit']}`{dirty} on {env.get('cpu_model', '?')}, "
        f"{env['cpus']} CPUs, {env.get('memory_gib', '?')} GiB, {env.get('filesystem', '?')} "
        f"(`{env['platform']}`), Python {env['python']}, trackio {env['trackio']}: "
        f"{params['rounds']} round(s) ({params['outage_rounds']} of the outage), "
        f"{env['duration_s']:.0f} s, load average {env['loadavg_start'][0]:.2f} at start and "
        f"{env['loadavg_end'][0]:.2f} at end."
    )


def render(results: dict[str, Any]) -> str:
    """The page's section for a saved run: where it ran, the table, the goals."""
    args = argparse.Namespace(**results["parameters"])
    raw = results["raw"]
    parts = [machine(results), table(raw, args)]
    met = goals(raw, args)
    if met:
        parts.append("Against the goals of the client's design:\n\n" + "\n".join(met))
    return "\n\n".join(parts)


def readme_section(readme: str) -> str:
    """The rendered part of the page (between the markers), as it stands."""
    match = re.search(re.escape(BEGIN) + r"(.*?)" + re.escape(END), readme, re.DOTALL)
    if match is None:
        raise ValueError(f"The page has no section between {BEGIN!r} and {END!r}")
    return match.group(1).strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("results", nargs="?", type=Path, default=RESULTS, help="a bench.py --json file")
    p.add_argument("--readme", type=Path, help="rewrite this file's section between the markers")
    args = p.parse_args(argv)
    section = render(json.loads(args.results.read_text()))
    if args.readme is None:
        print(section)
        return 0
    text = args.readme.read_text()
    readme_section(text)  # the markers are there
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    args.readme.write_text(f"{text[:start]}\n{section}\n{text[end:]}")
    print(f"{args.readme}: Performance section rendered from {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
