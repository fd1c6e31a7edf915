"""Chatroom beside the reference server: the same numbers from two ``sse_load.py --json`` files, and their ratio.

    python bench/compare.py APP.json REFERENCE.json             print the table
    python bench/compare.py --series APP1.json REF1.json APP2.json REF2.json ...
                                                                each pair's CPU ratio, and their median
    python bench/compare.py --combine OUT.json APP.json REF.json   write {"app": ..., "reference": ...}
                                                                (more pairs: {"runs": [{...}, ...]})

``bench/run.sh`` calls them (``BENCH_RUNS`` pairs). The issue's bar: CPU per delivered message at most 1.3×
the reference, each ratio taken within one pair (the host's speed drifts between runs).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

CPU_RATIO_TARGET = 1.3

ROWS: list[tuple[str, Callable[[dict[str, Any]], float | None], str]] = [
    ("server CPU per delivered message", lambda r: r["server"]["cpu_us_per_delivered"], "µs"),
    ("RSS per idle stream", lambda r: r["server"]["rss_kb_per_idle_stream"], "KB"),
    ("latency p50", lambda r: r["latency_ms"]["p50"], "ms"),
    ("latency p99", lambda r: r["latency_ms"]["p99"], "ms"),
    ("first → last stream p99", lambda r: r["fanout_spread_ms"]["p99"], "ms"),
    ("POST p99", lambda r: r["posted"]["post_ms"]["p99"], "ms"),
    ("load tool loop lag p99", lambda r: r["load_tool"]["loop_lag_ms"]["p99"], "ms"),
    ("streams open", lambda r: r["streams"]["open"], ""),
    (
        "lost + duplicated + out of order",
        lambda r: r["delivered"]["lost"] + r["delivered"]["duplicates"] + r["delivered"]["out_of_order"],
        "",
    ),
]


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def table(app: dict[str, Any], ref: dict[str, Any]) -> str:
    """The side-by-side table, with the CPU ratio judged against ``CPU_RATIO_TARGET``."""
    c = app["config"]
    lines = [
        f"Chatroom vs the reference (K={c['clients']}, {c['members']} members, "
        f"R={c['rate']:g}/s for {c['duration']:g} s)",
        f"  {'':<34} {'chatroom':>10} {'reference':>10} {'ratio':>7}",
    ]
    for name, get, unit in ROWS:
        try:
            a, r = get(app), get(ref)
        except (KeyError, TypeError):
            continue
        ratio = f"{a / r:.2f}x" if a is not None and r else "n/a"
        lines.append(f"  {name:<34} {_show(a):>10} {_show(r):>10} {ratio:>7}  {unit}")
    a, r = app["server"]["cpu_us_per_delivered"], ref["server"]["cpu_us_per_delivered"]
    if a and r:
        verdict = "ok  " if a / r <= CPU_RATIO_TARGET else "MISS"
        lines.append(f"  {verdict} CPU per delivery {a / r:.2f}x the reference (limit {CPU_RATIO_TARGET:g}x)")
    return "\n".join(lines)


def series(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    """One line per pair (CPU per delivery of each, their ratio) and the medians, judged against the target."""
    lines = [f"{len(pairs)} runs, each beside its own reference run"]
    lines.append(f"  {'run':<5} {'chatroom':>9} {'ref':>7} {'ratio':>6}")
    ratios, ours, theirs = [], [], []
    for number, (app, ref) in enumerate(pairs, 1):
        a, r = app["server"]["cpu_us_per_delivered"], ref["server"]["cpu_us_per_delivered"]
        if not (a and r):
            lines.append(f"  {number:<5} {_show(a):>9} {_show(r):>7}    n/a")
            continue
        ratios.append(a / r)
        ours.append(a)
        theirs.append(r)
        lines.append(f"  {number:<5} {a:>9.2f} {r:>7.2f} {a / r:>5.2f}x")
    if ratios:
        ratio = statistics.median(ratios)
        under = sum(x <= CPU_RATIO_TARGET for x in ratios)
        lines.append(
            f"  median {statistics.median(ours):>7.2f} {statistics.median(theirs):>7.2f} {ratio:>5.2f}x  "
            f"({under} of {len(ratios)} runs at most {CPU_RATIO_TARGET:g}x)"
        )
        verdict = "ok  " if ratio <= CPU_RATIO_TARGET else "MISS"
        lines.append(f"  {verdict} median CPU per delivery {ratio:.2f}x the reference (limit {CPU_RATIO_TARGET:g}x)")
    return "\n".join(lines)


def _load(path: str) -> dict[str, Any] | None:
    return json.loads(Path(path).read_text()) if Path(path).exists() else None


def main(argv: list[str]) -> int:
    if argv[:1] == ["--combine"]:
        out, *paths = argv[1:]
        runs = [
            {name: found for name, found in (("app", _load(a)), ("reference", _load(r))) if found is not None}
            for a, r in zip(paths[::2], paths[1::2], strict=True)
        ]
        Path(out).write_text(json.dumps(runs[0] if len(runs) == 1 else {"runs": runs}, indent=2) + "\n")
        return 0
    if argv[:1] == ["--series"]:
        paths = argv[1:]
        loaded = [(_load(a), _load(r)) for a, r in zip(paths[::2], paths[1::2], strict=True)]
        pairs = [(a, r) for a, r in loaded if a is not None and r is not None]
        if not pairs:
            print("no run wrote results on both sides", file=sys.stderr)
            return 1
        print()
        print(series(pairs))
        return 0
    app_path, ref_path = argv
    if not Path(ref_path).exists():
        print("the reference run wrote no results", file=sys.stderr)
        return 1
    print()
    print(table(json.loads(Path(app_path).read_text()), json.loads(Path(ref_path).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
