"""Run every benchmark and write one Markdown report: ``python -m benchmarks``.

Each benchmark module has ``run(...) -> list[dict]`` and ``markdown(rows) -> str``. This runs them in turn,
in one process, and writes a document with the machine, the date, the load it ran under, a section per
benchmark and where we stand against the project's speed targets, to ``benchmarks/RESULTS.md``.
``--quick`` runs every benchmark at tiny sizes, to check that they run (it writes only with ``--out``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


@dataclass
class Benchmark:
    module: str  # benchmarks.<module>
    title: str
    quick: Callable[[ModuleType], dict] = field(default=lambda module: {})  # run()'s options at tiny sizes
    optional: bool = False  # may be absent from this checkout


BENCHMARKS = [
    Benchmark(
        "autograd_engine",
        "The scalar engine: the MLP recipe, a deep chain, overhead per op",
        quick=lambda module: dict(steps=2, compare_steps=1, repeats=1, chain=2000),
    ),
    Benchmark(
        "transformer_speed",
        "The GPT: ours (explicit, SDPA) against PyTorch's own modules",
        quick=lambda module: dict(sizes=module.QUICK),
    ),
    Benchmark(
        "numpy_vs_torch",
        "The NumPy transformer (hand-written backprop) against the PyTorch one",
        quick=lambda module: dict(
            repeats=2, configs=[("tiny: 1 layer, C=16, 2 heads", dict(n_layer=1, n_head=2, n_embd=16), 2, 8)]
        ),
        optional=True,
    ),
]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=HERE, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def machine() -> list[str]:
    return [
        f"- date: {datetime.now().astimezone().isoformat(timespec='minutes')}",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}",
        f"- software: Python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}",
        "- threads: each benchmark sets torch to 1 thread for its figures unless a row says otherwise "
        f"(torch's default here: {torch.get_num_threads()})",
        f"- code: git {git_revision()}",
        f"- load average (1 / 5 / 15 min) at the start: {load()}",
    ]


def standing(results: dict[str, list[dict]]) -> list[str]:
    """One line per speed target of the project: the figure, the target, met or not."""
    lines = []
    if "autograd_engine" in results:
        step = results["autograd_engine"][0]["s/step"]
        verdict = "met" if step < 0.1 else "missed"
        lines.append(
            f"- the MLP recipe on the scalar engine: {step:.3f} s/step, target < 0.1 s/step: **{verdict}**"
        )
    for row in results.get("transformer_speed", []):
        if row["benchmark"].startswith("training") and row["threads"] == 1:
            median, (low, high) = row["sdpa/pytorch"], row["range"]
            verdict = "met" if median >= 1 else "missed"
            if low < 1 <= high:  # some rounds say the opposite of the median
                verdict += ", within the noise"
            lines.append(
                f"- {row['benchmark']}, 1 thread: ours with SDPA {median:.2f}x PyTorch's modules "
                f"(rounds {low:.2f}-{high:.2f}), target >= 1x: **{verdict}**"
            )
    return lines


def run_all(quick: bool = False, only: list[str] | None = None) -> str:
    """The report as Markdown."""
    doc = ["# Benchmarks", "", "`python -m benchmarks" + (" --quick`" if quick else "`"), ""]
    if quick:
        doc += [
            "**Quick run: tiny sizes, to check that the benchmarks run. These figures mean nothing.**",
            "",
        ]
    doc += machine()
    sections, results = [], {}
    for bench in BENCHMARKS:
        if only and bench.module not in only:
            continue
        name = f"benchmarks.{bench.module}"
        sections += [f"## {bench.title}", "", f"`python -m {name}`", ""]
        if bench.optional and importlib.util.find_spec(name) is None:
            sections += [f"Not run: `benchmarks/{bench.module}.py` is not in this checkout.", ""]
            print(f"{name}: not in this checkout, skipped", file=sys.stderr)
            continue
        module = importlib.import_module(name)
        print(f"{name}: running ...", file=sys.stderr)
        start = time.perf_counter()
        rows = module.run(**(bench.quick(module) if quick else {}))
        elapsed = time.perf_counter() - start
        results[bench.module] = rows
        doc_line = (module.__doc__ or "").strip().splitlines()
        if doc_line:
            sections += [doc_line[0], ""]
        sections += [
            module.markdown(rows),
            "",
            f"{elapsed:.0f} s; load average after it: {load()}",
            "",
        ]
    doc += ["", "## Where we stand against the targets", "", *(standing(results) or ["- (none run)"]), ""]
    return "\n".join(doc + sections).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that every benchmark runs")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the report (default: benchmarks/RESULTS.md; with --quick, nowhere)",
    )
    parser.add_argument(
        "--only", nargs="+", choices=[b.module for b in BENCHMARKS], help="run only these benchmarks"
    )
    args = parser.parse_args(argv)
    report = run_all(args.quick, args.only)
    print(report, end="")
    out = args.out if args.out or args.quick else HERE / "RESULTS.md"
    if out:
        out.write_text(report)
        print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
