"""The lm milestone: train the whole model family on the synthetic languages and show, in one table, how
much of each language each architecture learns, read against what a perfect model would score.

``python -m simplellm.lm.test [--quick] [--grammar sticky-3 ...] [--models gru transformer ...] [--seed S]``

Languages: sticky n = 2, 3, 4 and counting n = 3, trained on fresh samples and on a fixed set of K
samples; arithmetic n = 2 (plain and reversed answers) trained on half of all operand pairs. Models: the
count n-gram (a sweep over its order), the neural bigram, the MLP (a sweep over its context), the Elman
RNN, the GRU and the transformer, and a random baseline. For each: the share of its samples that the
language's validator accepts (95% Wilson interval), their novelty beside an exact model's, the
cross-entropy on fresh samples beside the entropy rate and the paired excess (a KL divergence per
token); for arithmetic, greedy exact match on held-out pairs by number of carries, and on sums one
digit longer than any trained on.

Prints the tables as Markdown and writes ``runs/lm/``: ``results.json`` (every figure), ``report.md``
and the plots. Jobs run in ``--workers`` processes (default 2, one torch thread each); every job is
seeded by its own description, so the figures do not depend on how the jobs are scheduled.

Exit status: 0 when every target that the run measures is met, 1 when one is missed, 2 for bad
arguments. A ``--quick`` run is a smoke run: its settings are far too small for the targets, so it shows
them for information and exits 0 once every job has run. ``docs/lm-milestone.md`` explains how to read
the tables.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from simplellm.data import score_samples, wilson_interval
from simplellm.data.corpora import load_text
from simplellm.data.splits import training_samples
from simplellm.lm import milestone_report as report
from simplellm.lm.milestone import DEFAULT, LANGUAGES, MODELS, QUICK, Job, Settings, plan, run_job
from simplellm.lm.milestone import training_strings as fixed_training_strings

ACCEPTS_QUICK = True
OUT_DIR = Path("runs") / "lm"


# ------------------------------------------------------------------ running the jobs
def run_jobs(
    jobs: list[Job], settings: Settings, workers: int = 2, progress: bool = True
) -> list[dict[str, Any]]:
    """Every job's result, in the order of ``jobs``, whatever order the workers finish them in."""
    results: dict[str, dict[str, Any]] = {}
    # The bar advances by each job's estimated cost, not by one per job: the first jobs are the longest
    # (minutes each) and the last ones take seconds, so counting jobs would make the time left meaningless.
    # Whole seconds, because a float total summed in another order than the updates ends at "-00:00 left".
    cost = {job.key: max(1, round(job.cost)) for job in jobs}
    bar = tqdm(
        total=sum(cost.values()),
        disable=not progress,
        desc="lm milestone",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}, about {remaining} left{postfix}]",
        dynamic_ncols=True,
    )
    bar.set_postfix_str(f"0/{len(jobs)} jobs", refresh=False)
    by_cost = sorted(jobs, key=lambda j: -j.cost)  # longest first: the two workers finish together
    if workers <= 1:
        for job in by_cost:
            results[job.key] = run_job(job, settings)
            _advance(bar, results[job.key], cost[job.key], len(results), len(jobs))
    else:
        # spawn: a fresh interpreter per worker, so no torch thread pool is inherited half-initialised
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending = {pool.submit(run_job, job, settings) for job in by_cost}
            while pending:
                # wake up every few seconds so the bar's clock runs while the long jobs train
                done, pending = wait(pending, timeout=5, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    results[result["key"]] = result
                    _advance(bar, result, cost[result["key"]], len(results), len(jobs))
                bar.refresh()
    bar.close()
    return [results[job.key] for job in jobs]


def _advance(bar: Any, result: dict[str, Any], cost: int, done: int, total: int) -> None:
    bar.set_postfix_str(f"{done}/{total} jobs, last {result['key']} {result['seconds']:.0f}s", refresh=False)
    bar.update(cost)


# ------------------------------------------------------------------ what the run knows about each language
def language_facts(keys: list[str], settings: Settings, seed: int) -> dict[str, dict[str, Any]]:
    from simplellm.lm.evaluate import ideal_novelty

    facts = {}
    for key in keys:
        lang = LANGUAGES[key]
        g = lang.grammar()
        regime = "half" if lang.name == "arithmetic" else "fixed"
        fixed = fixed_training_strings(lang, regime, settings, seed) or []
        facts[key] = {
            "label": lang.label,
            "config": g.config,
            "entropy_rate": g.entropy_rate().value,
            "mean_tokens": _mean_tokens(g),
            "fixed_size": len(fixed),
            "ideal_novelty_fixed": ideal_novelty(g, fixed),
        }
    return facts


def _mean_tokens(g: Any) -> float:
    """E[len(x) + 1]: entropy per sample divided by the entropy rate (both exact)."""
    if g.support_size() is not None and g.support_size() <= 200_000:
        return math.fsum(p * (len(x) + 1) for x, p in g.enumerate_support())
    from simplellm.lm.evaluate import fresh_samples

    xs = fresh_samples(g, 20_000, 0)
    return sum(len(x) + 1 for x in xs) / len(xs)


# ------------------------------------------------------------------ samples produced elsewhere
def score_external(args: argparse.Namespace, key: str) -> dict[str, Any]:
    """Score a file of samples (one per line, as ``python -m simplellm.data score`` reads them)."""
    lang = LANGUAGES[key]
    g = lang.grammar()
    samples = load_text(args.external, mode="lines")
    if args.external_train:
        train, source = load_text(args.external_train, mode="lines"), args.external_train
    else:
        train = training_samples(g, args.external_seed, args.external_num_train)
        source = f"simplellm.data prompt --seed {args.external_seed} --num {args.external_num_train}"
    result = score_samples(g, samples, train)
    from simplellm.lm.evaluate import ideal_novelty

    return {
        "source": str(args.external),
        "training_set": source,
        "language": key,
        "language_label": lang.label,
        "total": result.total,
        "valid": result.valid,
        "new": result.new,
        "duplicated": result.duplicated,
        "in_distribution": result.in_distribution,
        "interval": list(wilson_interval(result.valid, result.total)),
        "novelty": result.novelty,
        "ideal_novelty": ideal_novelty(g, train),
    }


# ------------------------------------------------------------------ the command line
def _languages(selected: list[str] | None) -> list[str]:
    if not selected:
        return list(LANGUAGES)
    keys = []
    for item in selected:
        matches = [k for k, lang in LANGUAGES.items() if item in (k, lang.name)]
        if not matches:
            raise ValueError(
                f"unknown language {item!r}; choose from {', '.join(LANGUAGES)} "
                "(or a name: sticky, counting, arithmetic)"
            )
        keys += [k for k in matches if k not in keys]
    return keys


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simplellm.lm.test",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 when every target the run measures is met, 1 when one is missed, "
        "2 for bad arguments. --quick is a smoke run: targets shown, not judged; exit 0.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller settings, same code (under 90 s); targets shown, not judged",
    )
    parser.add_argument(
        "--grammar",
        nargs="+",
        metavar="LANGUAGE",
        help=f"languages to run: {', '.join(LANGUAGES)}, or a name (sticky)",
    )
    parser.add_argument(
        "--models", nargs="+", choices=MODELS, metavar="MODEL", help=f"models: {', '.join(MODELS)}"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of data, initialisation and sampling")
    parser.add_argument(
        "--workers", type=int, default=2, help="processes training in parallel (1 thread each)"
    )
    parser.add_argument(
        "--out", type=Path, default=OUT_DIR, help="where results.json, report.md and plots go"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="RESULTS",
        help="print the report of a saved results.json; train nothing",
    )
    external = parser.add_argument_group("samples produced elsewhere (one language, given by --grammar)")
    external.add_argument(
        "--external", type=Path, metavar="FILE", help="samples, one per line, to score as a row"
    )
    external.add_argument(
        "--external-train", type=Path, metavar="FILE", help="the training samples they were shown"
    )
    external.add_argument("--external-seed", type=int, default=0, help="else: simplellm.data prompt's --seed")
    external.add_argument("--external-num-train", type=int, default=100, help="and its --num")
    external.add_argument("--external-only", action="store_true", help="score the file and train nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.from_json:
        try:
            summary = read_summary(args.from_json)
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(report.report(summary))
        return exit_status(summary)
    try:
        languages = _languages(args.grammar)
    except ValueError as error:
        parser.print_usage(sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.external and len(languages) != 1:
        print("error: --external needs --grammar with exactly one language", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("error: --workers must be >= 1", file=sys.stderr)
        return 2
    settings = QUICK if args.quick else DEFAULT
    start = time.perf_counter()

    external = None
    if args.external:
        try:
            external = score_external(args, languages[0])
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    jobs = [] if args.external_only else plan(settings, languages, args.models, args.seed)
    results = run_jobs(jobs, settings, args.workers, progress=not args.quiet)
    found = report.targets(results)
    summary = {
        "settings": asdict(settings),
        "seed": args.seed,
        "workers": args.workers,
        "languages": language_facts(languages, settings, args.seed),
        "results": results,
        "targets": [t.to_dict() for t in found],
        "external": external,
        "wall_seconds": time.perf_counter() - start,
        "cpu_seconds": sum(r["cpu_seconds"] for r in results),
    }
    text = report.report(summary)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(plain_json(summary), indent=1, allow_nan=False) + "\n")
    (args.out / "report.md").write_text(text + "\n")
    if not args.no_plots and results:
        from simplellm.lm.milestone_plots import save_plots

        save_plots(summary, args.out)
    print(text)
    print(f"\nresults, report and plots: {args.out}/")
    return exit_status(summary)


def exit_status(summary: dict[str, Any]) -> int:
    """1 when a target is missed; a quick run's targets are not judged (its settings are too small)."""
    if not report.judged(summary):
        return 0
    return 0 if all(t["met"] is not False for t in summary["targets"]) else 1


def read_summary(path: Path) -> dict[str, Any]:
    """A results.json as the run had it in memory: "inf" back to infinity, null shares back to nan."""

    def restore(value: Any) -> Any:
        if value in ("inf", "-inf"):
            return float(value)
        if isinstance(value, dict):
            return {k: restore(v) for k, v in value.items()}
        if isinstance(value, list):
            return [restore(v) for v in value]
        return value

    return restore(json.loads(Path(path).read_text()))


def plain_json(value: Any) -> Any:
    """Strict JSON: nan (no valid sample to measure) becomes null, an infinite loss the string "inf"."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
