"""The lm milestone (``python -m simplellm.lm.test``): its plan, its batches, its determinism, its targets,
and a ``--quick`` run whose table has the promised structure and whose n-gram sweep finds the threshold
that theory predicts."""

from __future__ import annotations

import json
import math
import random

import pytest

from simplellm.data import grammar, score_samples
from simplellm.lm import milestone as ms
from simplellm.lm import milestone_report as report
from simplellm.lm import test as milestone
from simplellm.lm.milestone_data import BucketedBatches, fixed_set_draw, fresh_draw
from simplellm.lm.tokenizers import BOS, EOS, CharTokenizer
from simplellm.lm.trainer import History


# ------------------------------------------------------------------ the plan
def test_the_default_plan_has_every_language_model_and_regime_once():
    jobs = ms.plan(ms.DEFAULT)
    keys = [j.key for j in jobs]
    assert len(keys) == len(set(keys))
    for lang in ("sticky-2", "sticky-3", "sticky-4", "counting-3"):
        for regime in ("fresh", "fixed"):
            mains = {j.model for j in jobs if j.language == lang and j.regime == regime and j.main}
            assert mains >= {"ngram", "bigram", "mlp", "rnn", "gru", "transformer"}
    for lang in ("arithmetic-2", "arithmetic-2r"):
        assert {j.regime for j in jobs if j.language == lang} == {"half"}
        assert {j.model for j in jobs if j.language == lang and j.length_test} == {"gru", "transformer"}
    # the sweeps bracket the predicted threshold: n-gram orders 1 .. n+2, MLP contexts 1 .. n+1
    for n in (2, 3, 4):
        orders = sorted(
            j.sweep_value for j in jobs if j.key.startswith(f"sticky-{n}/ngram") and j.regime == "fresh"
        )
        contexts = sorted(
            j.sweep_value for j in jobs if j.key.startswith(f"sticky-{n}/mlp") and j.regime == "fresh"
        )
        assert orders == list(range(1, n + 3)) and contexts == list(range(1, n + 2))
    assert sum(j.model == "uniform" for j in jobs) == len(ms.LANGUAGES)  # one random baseline per language


def test_the_plan_selects_languages_and_models():
    jobs = ms.plan(ms.QUICK, ["sticky-3"], ["gru"])
    assert {(j.language, j.model) for j in jobs} == {("sticky-3", "gru"), ("sticky-3", "uniform")}
    assert milestone._languages(["sticky"]) == ["sticky-2", "sticky-3", "sticky-4"]
    assert milestone._languages(["arithmetic-2r", "counting"]) == ["arithmetic-2r", "counting-3"]
    with pytest.raises(ValueError, match="unknown language"):
        milestone._languages(["klingon"])


# ------------------------------------------------------------------ length-bucketed batches
def test_bucketed_batches_use_every_drawn_sample_once_within_the_token_budget():
    g = grammar("sticky", n=2)
    tok = CharTokenizer(g.alphabet)
    draws = []

    def draw():
        draws.append(fresh())
        return draws[-1]

    fresh = fresh_draw(g, 3)
    data = BucketedBatches(draw, tok, [], {}, seed=3, tokens=256, pool=500)
    batches = []
    while data.drawn < 1000 or data.queue:
        batches.append(data.next_batch(4096))
    served = sorted(tok.decode(s) for b in batches for s in b)
    assert served == sorted(draws) and len(draws) == 1000
    assert data.seen == set(draws)
    for batch in batches:
        widest = max(len(s) for s in batch)
        assert len(batch) == 1 or len(batch) * (widest - 1) <= 256  # predicted tokens, padding included
    # batches hold samples of similar length: far less padding than random batches of the same rows
    padded = sum(len(b) * max(len(s) for s in b) for b in batches)
    real = sum(len(s) for b in batches for s in b)
    assert padded < 1.2 * real


def test_bucketed_batches_crop_long_samples_to_the_window_unless_every_sample_fits():
    g = grammar("sticky", n=2)
    tok = CharTokenizer(g.alphabet)
    data = BucketedBatches(fresh_draw(g, 0), tok, [], {}, seed=0, tokens=4096, pool=300)
    batch = data.next_batch(8, window=10)
    assert len(batch) <= 8 and all(len(s) <= 11 for s in batch)
    # a sample that fits is kept whole; a longer one becomes one random run of window + 1 tokens
    data = BucketedBatches(fresh_draw(g, 0), tok, [], {}, seed=0, tokens=100_000, pool=300)
    rows = data.next_batch(10_000, window=10)
    draw = fresh_draw(g, 0)
    texts = [draw() for _ in range(300)]
    assert len(rows) == 300
    assert sorted(tok.decode(r) for r in rows if r[0] == BOS and r[-1] == EOS) == sorted(
        t for t in texts if len(t) + 2 <= 11
    )
    assert all(len(r) == 11 for r in rows if not (r[0] == BOS and r[-1] == EOS))
    # counting's samples all fit a 40-token window: they are never cut
    c = grammar("counting", n=3)
    ctok = CharTokenizer(c.alphabet)
    longest = c.max_length() + 2
    data = BucketedBatches(fresh_draw(c, 0), ctok, [], {}, seed=0, tokens=100_000, pool=300, longest=longest)
    whole = data.next_batch(10_000, window=40)
    assert len(whole) == 300 and all(s[0] == BOS and s[-1] == EOS for s in whole)


def test_a_fixed_set_is_served_epoch_by_epoch():
    train = [f"s{i}" for i in range(7)]
    draw = fixed_set_draw(train, seed=1)
    first, second = [draw() for _ in range(7)], [draw() for _ in range(7)]
    assert sorted(first) == sorted(second) == sorted(train)
    assert first != second  # a new order each epoch


# ------------------------------------------------------------------ determinism
def _without_times(result):
    out = {k: v for k, v in result.items() if k not in ("seconds", "train_seconds", "cpu_seconds")}
    if "history" in out:
        out["history"] = dict(out["history"])
    return out


@pytest.mark.slow
def test_a_job_gives_the_same_figures_in_this_process_and_in_two_workers():
    jobs = [j for j in ms.plan(ms.QUICK, ["sticky-2"], ["gru", "ngram"]) if j.regime == "fresh"][:3]
    here = [ms.run_job(j, ms.QUICK) for j in jobs]
    there = milestone.run_jobs(jobs, ms.QUICK, workers=2, progress=False)
    assert [_without_times(r) for r in here] == [_without_times(r) for r in there]


def test_the_progress_bar_counts_estimated_cost_and_reaches_the_end(monkeypatch, capsys):
    jobs = [j for j in ms.plan(ms.QUICK, ["sticky-2"], ["ngram", "bigram", "gru"]) if j.regime == "fresh"]
    started = []

    def fake(job, settings):
        started.append(job.cost)
        return {"key": job.key, "seconds": 1.0}

    monkeypatch.setattr(milestone, "run_job", fake)
    out = milestone.run_jobs(jobs, ms.QUICK, workers=1, progress=True)
    assert [r["key"] for r in out] == [j.key for j in jobs]  # table order, whatever order they ran in
    assert started == sorted(started, reverse=True) and started[0] > started[-1]  # longest first
    err = capsys.readouterr().err
    assert "100%" in err and f"left, {len(jobs)}/{len(jobs)} jobs, last " in err
    assert "-00:00" not in err


def test_the_cost_estimate_orders_the_long_jobs_as_measured():
    """CPU seconds of the default run on 2026-12-08: counting GRU 343, sticky GRUs 263-294, arithmetic
    transformer 252, reversed arithmetic ~200 (9,000 steps; 160 at 6,000), sticky transformers 171-174."""
    cost = {j.key: j.cost for j in ms.plan(ms.DEFAULT)}
    assert cost["counting-3/gru/fresh"] > cost["sticky-4/gru/fresh"] > cost["arithmetic-2/transformer/half"]
    assert cost["arithmetic-2/transformer/half"] > cost["arithmetic-2r/transformer/half"]
    assert cost["arithmetic-2r/transformer/half"] > cost["sticky-2/transformer/fresh"]
    assert cost["sticky-2/transformer/fresh"] > cost["sticky-2/mlp-3/fresh"]
    assert 2500 < sum(cost.values()) < 3500  # the run measured 2,942 CPU seconds


def test_a_model_the_torch_trainer_cannot_train_joins_through_its_recipe(monkeypatch):
    """The hook for the NumPy networks: a Recipe with its own fit function gets the milestone's data."""
    calls = {}

    def fit(model, data, config):
        sequences = data.training_sequences(500)
        calls["steps"] = config.steps
        model.fit(sequences)
        return History(
            steps=[1], train_loss=[model.cross_entropy(sequences)], lr=[0.0], tokens=[1], seconds=[0.0]
        )

    recipe = ms.Recipe(
        "ngram",
        options=lambda lang: {"order": 3},
        training=lambda lang, regime: {"steps": 7, "tokens": 64},
        fit=fit,
    )
    monkeypatch.setitem(ms.RECIPES, "counted-by-hook", recipe)
    (job,) = [
        j
        for j in ms.plan(ms.QUICK, ["sticky-2"], ["counted-by-hook"])
        if j.regime == "fresh" and j.model != "uniform"
    ]
    result = ms.run_job(job, ms.QUICK)
    assert calls == {"steps": 20}  # the quick settings' floor of 20 steps
    assert (
        result["train_samples"] == 500 and result["generation"]["in_distribution"] == 1.0
    )  # order 3 = n + 1


# ------------------------------------------------------------------ targets
def _fake(language, model, regime, in_dist, excess, **extra):
    valid = round(in_dist * 2000)
    low, high = 0.0, 1.0
    return {
        "key": f"{language}/{model}/{regime}",
        "language": language,
        "model": model,
        "regime": regime,
        "main": True,
        "sweep_value": extra.pop("sweep_value", None),
        "generation": {"in_distribution": in_dist, "valid": valid, "total": 2000, "interval": [low, high]},
        "loss": {"excess": excess, "excess_se": 0.0001, "unseen": 0, "samples": 4000},
        "memorising": extra.pop("memorising", False),
        **extra,
    }


def test_targets_are_met_only_at_or_beyond_their_thresholds():
    results = [
        _fake("sticky-3", "gru", "fresh", 0.995, 0.005),
        _fake("sticky-3", "transformer", "fresh", 0.9945, 0.0049),
        _fake("counting-3", "gru", "fresh", 1.0, 0.0051),
    ]
    found = {t.name: t.met for t in report.targets(results)}
    assert found["gru, sticky n=3, fresh: in-distribution >= 99.5%"] is True
    assert found["gru, sticky n=3, fresh: excess <= 0.005 nats/token"] is True
    assert found["transformer, sticky n=3, fresh: in-distribution >= 99.5%"] is False
    assert found["transformer, sticky n=3, fresh: excess <= 0.005 nats/token"] is True
    assert found["gru, counting n=3, fresh: excess <= 0.005 nats/token"] is False
    assert found["gru, sticky n=2, fresh: in-distribution >= 99.5%"] is None  # not run


def test_the_fixed_set_target_fails_only_when_novelty_cannot_be_judged():
    ok = [_fake("sticky-3", "gru", "fixed", 0.9, 0.1, memorising=True)]
    assert report.targets(ok)[-1].met is True  # flagged counts: the table says so
    unjudged = ok + [_fake("sticky-3", "rnn", "fixed", 0.0, 0.1, memorising=None)]
    assert report.targets(unjudged)[-1].met is False
    # the count n-gram is not a neural model, and half of the pairs is not the fixed-K regime
    others = ok + [_fake("sticky-3", "ngram", "fixed", 1.0, 0.1, memorising=None)]
    others += [_fake("arithmetic-2", "bigram", "half", 0.0, 1.0, memorising=None)]
    assert report.targets(others)[-1].met is True


def test_shares_are_never_rounded_up_to_100_percent():
    assert report._pct(1.0) == "100.0"
    assert report._pct(1 - 1e-15) == "100.0"  # a Wilson bound
    assert report._pct(0.9996) == "99.96"
    assert report._pct(0.99999) == "99.999"
    assert report._pct(0.9994) == "99.9"
    assert report._pct(float("nan")) == "n/a"


def test_a_share_of_10000_samples_shows_the_hundredths_that_decide_the_target():
    def row(valid: int, total: int) -> dict:
        share = valid / total
        interval = [share - 0.001, share + 0.001]
        return {"generation": {"total": total, "in_distribution": share, "interval": interval}}

    assert report._pct_ci(row(9946, 10_000)) == "99.46 [99.36, 99.56]"  # a miss of 99.5%, not "99.5"
    assert report._pct_ci(row(1989, 2000)) == "99.5 [99.4, 99.6]"  # 2,000 samples: tenths


# ------------------------------------------------------------------ the quick run
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm")
    code = milestone.main(["--quick", "--grammar", "sticky-2", "arithmetic-2r", "--out", str(out), "--quiet"])
    return code, out, json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_the_quick_run_writes_every_figure_and_the_promised_files(quick_run):
    code, out, summary = quick_run
    assert code == 0  # a smoke run: its settings are too small for the targets, which it shows unjudged
    assert any(t["met"] is False for t in summary["targets"])  # ... and quick settings do miss some
    assert set(summary) >= {"settings", "seed", "workers", "languages", "results", "targets", "wall_seconds"}
    assert summary["settings"]["name"] == "quick"
    assert set(summary["languages"]) == {"sticky-2", "arithmetic-2r"}
    for r in summary["results"]:
        assert set(r) >= {"key", "model", "regime", "generation", "loss", "ideal_novelty", "params", "steps"}
        assert set(r["generation"]) >= {"total", "valid", "new", "in_distribution", "interval", "novelty"}
        assert set(r["loss"]) >= {"cross_entropy", "entropy_rate", "excess", "excess_se"}
    rows = {(r["language"], r["regime"], r["model"]) for r in summary["results"] if r["main"]}
    models = {"uniform", "ngram", "bigram", "mlp", "rnn", "gru", "transformer"}
    assert rows == (
        {("sticky-2", "fresh", m) for m in models}
        | {("sticky-2", "fixed", m) for m in models - {"uniform"}}
        | {("arithmetic-2r", "half", m) for m in models}
    )
    # the models held to 99.5% in-distribution are judged on more samples than the others
    for r in summary["results"]:
        judged = r["model"] in ms.TARGET_MODELS
        assert r["generation"]["total"] == (ms.QUICK.generate_judged if judged else ms.QUICK.generate)
    arithmetic = [r for r in summary["results"] if r["language"] == "arithmetic-2r"]
    assert all(set(r["exact_match"]["by_carries"]) == {"0", "1", "2"} for r in arithmetic)
    assert {r["model"] for r in arithmetic if "length" in r} == {"gru", "transformer"}
    assert all(r["length"]["language"] == "arithmetic n=3 reversed" for r in arithmetic if "length" in r)
    for name in ("results.json", "report.md", "loss_sticky-2.png", "sweeps.png", "excess.png"):
        assert (out / name).stat().st_size > 0


@pytest.mark.slow
def test_the_quick_report_has_every_table_and_column(quick_run):
    _, out, _ = quick_run
    text = (out / "report.md").read_text()
    for heading in (
        "## Languages",
        "## Models",
        "## Sweeps",
        "## Arithmetic",
        "## Length generalisation",
        "## Targets",
    ):
        assert heading in text
    for column in (
        "in-dist % [95% CI]",
        "samples",
        "novelty %",
        "ideal %",
        "CE",
        "H",
        "excess (KL/token)",
        "params",
        "steps",
    ):
        assert f"| {column} |" in text
    assert "random (uniform)" in text


@pytest.mark.slow
def test_the_count_ngram_reaches_exactly_100_percent_from_order_n_plus_1_and_not_before(quick_run):
    _, _, summary = quick_run
    sweep = {
        r["sweep_value"]: r["generation"]
        for r in summary["results"]
        if r["language"] == "sticky-2" and r["model"] == "ngram" and r["regime"] == "fresh"
    }
    assert sorted(sweep) == [1, 2, 3, 4]
    assert sweep[3]["valid"] == sweep[3]["total"] and sweep[4]["valid"] == sweep[4]["total"]
    assert sweep[2]["interval"][1] < 0.9  # order n: clearly below
    target = next(t for t in summary["targets"] if t["name"].startswith("count n-gram, sticky n=2"))
    assert target["met"] is True


def test_the_report_can_be_printed_again_from_results_json(quick_run, capsys):
    _, out, _ = quick_run
    assert milestone.main(["--from-json", str(out / "results.json")]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == (out / "report.md").read_text().strip()
    assert "Not judged: a quick run is a smoke run" in printed


def test_a_default_run_exits_1_when_a_target_is_missed_and_a_quick_run_does_not(tmp_path, capsys):
    summary = {
        "settings": {"name": "default"},
        "seed": 0,
        "workers": 1,
        "languages": {},
        "results": [],
        "targets": [report.Target("a", "1", True).to_dict(), report.Target("b", "0", False).to_dict()],
        "external": None,
        "wall_seconds": 1.0,
        "cpu_seconds": 1.0,
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(summary))
    assert milestone.main(["--from-json", str(path)]) == 1
    assert "Not judged" not in capsys.readouterr().out
    summary["targets"][1]["met"] = None  # not run: not missed
    path.write_text(json.dumps(summary))
    assert milestone.main(["--from-json", str(path)]) == 0
    summary["targets"][1]["met"] = False
    summary["settings"]["name"] = "quick"
    path.write_text(json.dumps(summary))
    assert milestone.main(["--from-json", str(path)]) == 0
    assert "Not judged" in capsys.readouterr().out


# ------------------------------------------------------------------ samples produced elsewhere
def test_external_samples_are_scored_by_the_same_validator(tmp_path, capsys):
    g = grammar("sticky", n=3)
    rng = random.Random(0)
    samples = [g.sample(rng) for _ in range(30)] + ["aB", "1. abc", ""]
    path = tmp_path / "reply.txt"
    path.write_text("\n".join(samples) + "\n")
    out = tmp_path / "out"
    code = milestone.main(
        ["--grammar", "sticky-3", "--external", str(path), "--external-only", "--out", str(out)]
    )
    assert code == 0
    external = json.loads((out / "results.json").read_text())["external"]
    expected = score_samples(g, [s for s in samples if s], g.splits(0, 100).train)
    assert (external["total"], external["valid"], external["new"]) == (
        expected.total,
        expected.valid,
        expected.new,
    )
    assert math.isclose(
        external["ideal_novelty"], 1 - sum(math.exp(g.logprob(x)) for x in set(g.splits(0, 100).train))
    )
    assert "## External samples" in capsys.readouterr().out


def test_bad_arguments_exit_with_2(tmp_path, capsys):
    assert milestone.main(["--grammar", "klingon", "--out", str(tmp_path)]) == 2
    assert milestone.main(["--grammar", "sticky", "--external", "x.txt", "--out", str(tmp_path)]) == 2
    assert "exactly one language" in capsys.readouterr().err
