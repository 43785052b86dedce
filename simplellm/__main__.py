"""``python -m simplellm``: run every milestone that exists, in order.

Each milestone is a module ``simplellm.<tier>.test`` with a ``main(argv) -> int`` that trains,
prints a table, and writes its plots and a results JSON under ``runs/<tier>/``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from pathlib import Path

from simplellm import MILESTONES


def available_milestones() -> list[str]:
    found = []
    for tier in MILESTONES:
        try:
            if importlib.util.find_spec(f"simplellm.{tier}.test") is not None:
                found.append(tier)
        except ModuleNotFoundError:  # the tier's package itself is not there yet
            pass
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simplellm", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=MILESTONES, help="run only these milestones")
    parser.add_argument("--quick", action="store_true", help="pass --quick to milestones that accept it")
    args = parser.parse_args(argv)

    tiers = [t for t in available_milestones() if not args.only or t in args.only]
    outcomes: list[tuple[str, int, float]] = []
    for tier in tiers:
        print(f"\n=== milestone: simplellm.{tier} " + "=" * 40, flush=True)
        module = importlib.import_module(f"simplellm.{tier}.test")
        milestone_argv = ["--quick"] if args.quick and getattr(module, "ACCEPTS_QUICK", False) else []
        start = time.perf_counter()
        code = module.main(milestone_argv)
        outcomes.append((tier, code, time.perf_counter() - start))

    print("\n=== summary " + "=" * 60)
    for tier, code, seconds in outcomes:
        status = "passed" if code == 0 else f"FAILED (exit {code})"
        print(f"  {tier:<9} {status:<18} {seconds:7.1f} s   plots and results: {Path('runs') / tier}/")
    return 0 if all(code == 0 for _, code, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
