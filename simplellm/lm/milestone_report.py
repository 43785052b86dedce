"""The lm milestone's tables and targets, from the list of job results (see ``simplellm.lm.milestone``).

Everything here reads the results; nothing trains. The Markdown tables are what ``simplellm.lm.test``
prints and what ``docs/lm-milestone.md`` explains column by column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from simplellm.lm import evaluate as ev
from simplellm.lm.milestone import LANGUAGES, RECIPES, TARGET_MODELS

Result = dict[str, Any]

IN_DISTRIBUTION_TARGET = 0.995
EXCESS_TARGET = 0.005  # nats per token
ARITHMETIC_EXACT_TARGET = 0.97
ARITHMETIC_REVERSED_EXACT_TARGET = 0.995
ARITHMETIC_SAMPLED_TARGET = 0.99
TARGET_LANGUAGES = ("sticky-2", "sticky-3", "sticky-4", "counting-3")
MLP_SWEEP_TARGET = 0.99
NGRAM_SWEEP_TARGET = 1.0
CLEARLY_BELOW = 0.9  # an n-gram of order n is "clearly below" when its 95% interval ends under 90%

REGIME_NAMES = {"fresh": "fresh", "fixed": "fixed K", "half": "half pairs"}


@dataclass
class Target:
    """One promise of the milestone: what is asked, the figure measured, and whether it is met.

    ``met`` is None when the part of the run that measures it was not run (``--grammar``/``--models``).
    """

    name: str
    figure: str
    met: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "figure": self.figure, "met": self.met}


# ------------------------------------------------------------------ finding results
def find(results: Iterable[Result], **where: Any) -> Result | None:
    for r in results:
        if all(r.get(k) == v for k, v in where.items()):
            return r
    return None


def main_rows(results: list[Result]) -> list[Result]:
    return [r for r in results if r["main"]]


# ------------------------------------------------------------------ targets
def targets(results: list[Result]) -> list[Target]:
    """Every target of the issue, judged on the results at hand."""
    out = []
    for lang in TARGET_LANGUAGES:
        for model in TARGET_MODELS:
            r = find(results, language=lang, model=model, regime="fresh", main=True)
            label = f"{model}, {LANGUAGES[lang].label}, fresh"
            if r is None:
                out += [
                    Target(f"{label}: in-distribution >= 99.5%", "not run", None),
                    Target(f"{label}: excess <= {EXCESS_TARGET} nats/token", "not run", None),
                ]
                continue
            share = r["generation"]["in_distribution"]
            out.append(
                Target(f"{label}: in-distribution >= 99.5%", _pct_ci(r), share >= IN_DISTRIBUTION_TARGET)
            )
            loss = r["loss"]
            out.append(
                Target(
                    f"{label}: excess <= {EXCESS_TARGET} nats/token",
                    _excess(loss),
                    loss["excess"] <= EXCESS_TARGET,
                )
            )
    for lang in ("sticky-2", "sticky-3", "sticky-4"):
        n = LANGUAGES[lang].params["n"]
        at = find(results, language=lang, model="ngram", regime="fresh", sweep_value=n + 1)
        below = find(results, language=lang, model="ngram", regime="fresh", sweep_value=n)
        label = f"count n-gram, {LANGUAGES[lang].label}"
        if at is None or below is None:
            out.append(
                Target(f"{label}: 100.0% from order {n + 1}, clearly below at order {n}", "not run", None)
            )
            continue
        reached = at["generation"]["valid"] == at["generation"]["total"]
        higher = [
            r
            for r in results
            if r["language"] == lang
            and r["model"] == "ngram"
            and r["regime"] == "fresh"
            and r["sweep_value"] > n + 1
        ]
        reached = reached and all(r["generation"]["valid"] == r["generation"]["total"] for r in higher)
        clearly = below["generation"]["interval"][1] < CLEARLY_BELOW
        figure = f"order {n + 1}: {_pct(at['generation']['in_distribution'])}; order {n}: {_pct_ci(below)}"
        out.append(
            Target(
                f"{label}: 100.0% from order {n + 1}, clearly below (< 90%) at order {n}",
                figure,
                reached and clearly,
            )
        )
    for lang, exact_target in (
        ("arithmetic-2", ARITHMETIC_EXACT_TARGET),
        ("arithmetic-2r", ARITHMETIC_REVERSED_EXACT_TARGET),
    ):
        label = f"transformer, {LANGUAGES[lang].label}, half of the pairs"
        r = find(results, language=lang, model="transformer", regime="half")
        name = f"{label}: held-out greedy exact match >= {exact_target:.1%}"
        if r is None:
            out.append(Target(name, "not run", None))
        else:
            rate = r["exact_match"]["rate"]
            out.append(Target(name, f"{_pct(rate)} of {r['exact_match']['total']}", rate >= exact_target))
        if lang == "arithmetic-2":
            name = f"{label}: sampled in-distribution >= 99%"
            if r is None:
                out.append(Target(name, "not run", None))
            else:
                share = r["generation"]["in_distribution"]
                out.append(Target(name, _pct_ci(r), share >= ARITHMETIC_SAMPLED_TARGET))
    # the fixed-set regime: K samples drawn once (arithmetic's half of the pairs has its own targets;
    # its rows are flagged the same way, for information)
    name = "fixed K: every neural model within 3 points of the ideal novelty, or flagged as memorising"
    judged = [r for r in results if r["regime"] == "fixed" and _is_neural(r["model"])]
    if judged:
        unmeasured = [r["key"] for r in judged if r["memorising"] is None]
        flagged = sum(bool(r["memorising"]) for r in judged)
        figure = f"{len(judged) - flagged - len(unmeasured)} within 3 points, {flagged} flagged as memorising"
        if unmeasured:
            figure += f", {len(unmeasured)} without a valid sample to judge"
        out.append(Target(name, figure, not unmeasured))
    else:
        out.append(Target(name, "not run", None))
    return out


def _is_neural(model: str) -> bool:
    return model in RECIPES and RECIPES[model].family != "ngram"


def row_verdict(r: Result) -> str:
    """The target column of the main table: which of the row's targets are met."""
    marks = []
    if r["regime"] == "fresh" and r["model"] in TARGET_MODELS and r["language"] in TARGET_LANGUAGES:
        marks.append(_mark(r["generation"]["in_distribution"] >= IN_DISTRIBUTION_TARGET) + " in-dist")
        marks.append(_mark(r["loss"]["excess"] <= EXCESS_TARGET) + " excess")
    if r["model"] == "transformer" and r["regime"] == "half":
        exact = (
            ARITHMETIC_REVERSED_EXACT_TARGET if r["language"] == "arithmetic-2r" else ARITHMETIC_EXACT_TARGET
        )
        marks.append(_mark(r["exact_match"]["rate"] >= exact) + " exact")
        if r["language"] == "arithmetic-2":
            marks.append(_mark(r["generation"]["in_distribution"] >= ARITHMETIC_SAMPLED_TARGET) + " sampled")
    if r["regime"] in ("fixed", "half") and _is_neural(r["model"]):
        marks.append(
            "✓ novelty" if r["memorising"] is False else "flagged" if r["memorising"] else "✗ novelty"
        )
    return ", ".join(marks)


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


# ------------------------------------------------------------------ formatting
def _pct(x: float | None, digits: int = 1) -> str:
    """A share in percent; never rounded up to 100 (100.0 means every sample, 99.95 one short of it)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if x > 1 - 1e-12:  # a Wilson bound of 1 can come out a rounding error below it
        x = 1.0
    text = f"{100 * x:.{digits}f}"
    while x < 1 and text.startswith("100") and digits < 4:
        digits += 1
        text = f"{100 * x:.{digits}f}"
    return text


def _pct_ci(r: Result) -> str:
    """The in-distribution share and its interval, to 0.01 points from 10,000 samples on (so that a
    99.46%, which misses 99.5%, is not shown as 99.5), else to 0.1."""
    g = r["generation"]
    low, high = g["interval"]
    digits = 2 if g["total"] >= 10_000 else 1
    return f"{_pct(g['in_distribution'], digits)} [{_pct(low, digits)}, {_pct(high, digits)}]"


def _nats(x: float, digits: int = 4) -> str:
    return "∞" if math.isinf(x) else f"{x:.{digits}f}"


def _excess(loss: dict[str, Any]) -> str:
    if math.isinf(loss["excess"]):
        return f"∞ ({loss['unseen']} of {loss['samples']} have q = 0)"
    return f"{loss['excess']:.4f} ± {loss['excess_se']:.4f}"


def _steps(r: Result) -> str:
    if r["model"] == "uniform":
        return "—"
    if "history" not in r:  # counted, not trained: the number of samples it counted
        return f"{r['train_samples']:,} samples"
    return f"{r['steps']:,}"


def model_label(r: Result) -> str:
    if r["model"] == "uniform":
        return "random (uniform)"
    recipe = RECIPES.get(r["model"])
    if recipe is not None and recipe.sweep_option and r["sweep_value"] is not None:
        return f"{r['model']} ({recipe.sweep_option} {r['sweep_value']})"
    return r["model"]


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def languages_table(languages: dict[str, dict[str, Any]]) -> str:
    rows = [
        [
            info["label"],
            f"{info['entropy_rate']:.4f}",
            f"{info['mean_tokens']:.1f}",
            f"{_pct(info['ideal_novelty_fixed'])}",
        ]
        for info in languages.values()
    ]
    return table(
        ["language", "entropy rate H (nats/token)", "mean tokens", "ideal novelty, K training samples (%)"],
        rows,
        "lrrr",
    )


def main_table(results: list[Result]) -> str:
    rows = []
    for r in main_rows(results):
        g, loss = r["generation"], r["loss"]
        novelty = _pct(g["novelty"])
        if r["memorising"]:
            novelty += " memorising"
        rows.append(
            [
                LANGUAGES[r["language"]].label,
                REGIME_NAMES[r["regime"]],
                model_label(r),
                _pct_ci(r),
                f"{g['total']:,}",
                novelty,
                _pct(r["ideal_novelty"]),
                _nats(loss["cross_entropy"]),
                _nats(loss["entropy_rate"]),
                _excess(loss),
                f"{r['params']:,}",
                _steps(r),
                f"{r['seconds']:.0f}",
                row_verdict(r),
            ]
        )
    header = [
        "language",
        "regime",
        "model",
        "in-dist % [95% CI]",
        "samples",
        "novelty %",
        "ideal %",
        "CE",
        "H",
        "excess (KL/token)",
        "params",
        "steps",
        "s",
        "targets",
    ]
    return table(header, rows, "lllrrrrrrrrrrl")


def sweep_table(results: list[Result]) -> str:
    rows = []
    for model, target in (("ngram", NGRAM_SWEEP_TARGET), ("mlp", MLP_SWEEP_TARGET)):
        for lang in LANGUAGES:
            points = sorted(
                (
                    r
                    for r in results
                    if r["language"] == lang
                    and r["model"] == model
                    and r["regime"] != "fixed"
                    and r["sweep_value"] is not None
                ),
                key=lambda r: r["sweep_value"],
            )
            if len(points) < 2:
                continue
            scores = {r["sweep_value"]: r["generation"]["in_distribution"] for r in points}
            reached = ev.smallest_reaching(scores, target)
            jump = ev.largest_jump(scores)
            predicted = ev.predicted_threshold(LANGUAGES[lang].grammar(), model)
            cells = " · ".join(f"{k}: {_pct(v)}" for k, v in scores.items())
            rows.append(
                [
                    LANGUAGES[lang].label,
                    "count n-gram (order)" if model == "ngram" else "MLP (context)",
                    f"{target:.0%}",
                    cells,
                    "none" if reached is None else str(reached),
                    "—" if jump is None else str(jump),
                    "—" if predicted is None else str(predicted),
                ]
            )
    header = [
        "language",
        "model (setting)",
        "target",
        "in-dist % by setting",
        "smallest reaching the target",
        "largest rise at",
        "predicted",
    ]
    return table(header, rows, "llrlrrr")


def _breakdown(tallies: dict[str, dict[str, int]], with_counts: bool = True) -> str:
    return " · ".join(
        f"{key}: {_pct(v['correct'] / v['total'])}" + (f" ({v['total']})" if with_counts else "")
        for key, v in tallies.items()
    )


def arithmetic_table(results: list[Result]) -> str:
    rows = []
    for r in results:
        if "exact_match" not in r or not r["main"]:
            continue
        em = r["exact_match"]
        rows.append(
            [
                LANGUAGES[r["language"]].label,
                model_label(r),
                _pct(em["rate"]),
                _breakdown(em["by_carries"]),
                _breakdown(em["by_digits"], with_counts=False),
                _pct(r["exact_match_train"]["rate"]),
                _pct_ci(r),
                f"{_pct(r['generation']['novelty'])} (ideal {_pct(r['ideal_novelty'])})",
            ]
        )
    header = [
        "language",
        "model",
        "held-out exact %",
        "by carries: % (pairs)",
        "by operand digits a+b: %",
        "training pairs exact %",
        "sampled in-dist %",
        "novelty %",
    ]
    return table(header, rows, "llrllrrr")


def length_table(results: list[Result]) -> str:
    rows = []
    for r in results:
        if "length" not in r:
            continue
        em = r["length"]
        example = em["wrong_examples"][0] if em["wrong_examples"] else ""
        rows.append(
            [
                LANGUAGES[r["language"]].label,
                em["language"],
                model_label(r),
                _pct(em["rate"]),
                _breakdown(em["by_carries"], with_counts=False),
                _breakdown(em["by_digits"], with_counts=False),
                f"`{example}`",
            ]
        )
    header = [
        "trained on",
        "tested on",
        "model",
        "exact %",
        "by carries",
        "by operand digits",
        "a wrong answer",
    ]
    return table(header, rows, "lllrlll")


def targets_table(found: list[Target]) -> str:
    rows = [[t.name, t.figure, "not run" if t.met is None else _mark(t.met)] for t in found]
    return table(["target", "measured", "met"], rows, "llc")


def external_table(external: dict[str, Any]) -> str:
    low, high = external["interval"]
    row = [
        external["source"],
        external["language_label"],
        str(external["total"]),
        f"{_pct(external['in_distribution'])} [{_pct(low)}, {_pct(high)}]",
        f"{_pct(external['novelty'])}",
        f"{_pct(external['ideal_novelty'])}",
        str(external["duplicated"]),
    ]
    return table(
        ["samples from", "language", "scored", "in-dist % [95% CI]", "novelty %", "ideal %", "duplicated"],
        [row],
        "llrrrrr",
    )


def judged(summary: dict[str, Any]) -> bool:
    """Whether a run's targets decide its verdict: not for a quick (smoke) run."""
    return summary["settings"]["name"] != "quick"


def report(summary: dict[str, Any]) -> str:
    """The whole Markdown report of a run."""
    results, found = summary["results"], [Target(**t) for t in summary["targets"]]
    parts = [
        f"# lm milestone: how much of each language each model learns "
        f"({summary['settings']['name']} run, seed {summary['seed']})",
        "",
        "## Languages",
        languages_table(summary["languages"]),
        "",
        "## Models (one row per language x regime x model)",
        "CE: cross-entropy on fresh samples, nats per token with EOS; H: the entropy rate, the floor; "
        "excess: mean of log p(x) - log q(x) over the same samples per token (KL), ± its standard error.",
        "",
        main_table(results),
    ]
    if any(r["sweep_value"] is not None for r in results if r["regime"] != "fixed"):
        parts += ["", "## Sweeps: how much context a model needs", sweep_table(results)]
    if any("exact_match" in r for r in results):
        parts += [
            "",
            "## Arithmetic: greedy answers to operand pairs never trained on",
            arithmetic_table(results),
        ]
    if any("length" in r for r in results):
        parts += [
            "",
            "## Length generalisation (no target): trained at n = 2, asked n + 1 = 3 digit sums",
            length_table(results),
        ]
    if summary.get("external"):
        parts += [
            "",
            "## External samples, scored by the same validator",
            external_table(summary["external"]),
        ]
    met = [t for t in found if t.met is not None]
    parts += [
        "",
        f"## Targets: {sum(bool(t.met) for t in met)} of {len(met)} met"
        + (f" ({len(found) - len(met)} not run)" if len(met) < len(found) else ""),
    ]
    if not judged(summary):
        parts += [
            "",
            f"Not judged: a {summary['settings']['name']} run is a smoke run, with settings far too small "
            "for these targets; they are judged by the default run (`python -m simplellm.lm.test`).",
            "",
        ]
    parts += [
        targets_table(found),
        "",
        f"Wall time {summary['wall_seconds']:.0f} s with {summary['workers']} worker(s); {len(results)} jobs "
        f"using {summary.get('cpu_seconds', 0):.0f} CPU seconds.",
    ]
    return "\n".join(parts)
