"""A fast run of the milestone ``python -m simplellm.nn.test``: what it writes, measures and checks."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from simplellm.nn import test as milestone

torch.set_num_threads(1)

TINY = milestone.Config(steps=400, small_examples=16, small_steps=40)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "nn"
    return milestone.run_milestone(TINY, out), out


@pytest.mark.slow
def test_writes_results_json_and_a_loss_curve_plot(results):
    returned, out = results
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(returned))
    assert {
        "config",
        "var_y",
        "runs",
        "curve_differences",
        "long_run_differences",
        "checks",
        "passed",
        "wall_s",
        "torch_threads",
        "plot",
    } <= set(saved)
    png = (out / "loss_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


@pytest.mark.slow
def test_one_run_per_stage_and_optimizer_in_each_setting_with_finite_figures(results):
    runs = results[0]["runs"]
    keys = sorted((r["setting"], r["stage"], r["optimizer"]) for r in runs)
    expected = [("full", s, o) for s in ("stage 2", "stage 3") for o in ("Adam", "SGD")]
    expected += [("small", s, o) for s in ("stage 1", "stage 2", "stage 3") for o in ("Adam", "SGD")]
    assert keys == sorted(expected)
    for r in runs:
        assert len(r["losses"]) == r["steps"] == (TINY.steps if r["setting"] == "full" else TINY.small_steps)
        assert r["n_train"] == (800 if r["setting"] == "full" else TINY.small_examples)
        for name in ("train_mse", "test_mse", "wall_s", "cpu_s", "steps_per_s"):
            assert math.isfinite(r[name]) and r[name] > 0, name
        assert all(math.isfinite(v) for v in r["losses"])
        assert r["losses"][-1] < r["losses"][0]


@pytest.mark.slow
def test_the_stages_curves_agree_and_every_check_passes(results):
    returned = results[0]
    assert len(returned["curve_differences"]) == 6
    assert max(returned["curve_differences"].values()) <= 1e-9
    assert set(returned["checks"]) == {
        "loss curves of the stages equal to 1e-09 at every step",
        "stage 3 + Adam test MSE <= 1% of Var(y)",
        "every run learns (final loss < 10% of the first)",
        "milestone finishes in under 120 s",
    }
    assert all(check["passed"] for check in returned["checks"].values()) and returned["passed"]
    adam3 = next(
        r
        for r in returned["runs"]
        if (r["stage"], r["optimizer"], r["setting"]) == ("stage 3", "Adam", "full")
    )
    assert adam3["test_mse"] <= 0.01 * returned["var_y"]


def test_the_table_has_a_row_per_run():
    run = milestone.Run("stage 1", "SGD", "small", 16, 40, [1.0, 0.5], 0.25, 0.5, 2.0, 1.5)
    table = milestone.markdown_table([run], var_y=1.0).splitlines()
    assert table[0].startswith("| stage | optimizer |") and "steps/s" in table[0]
    assert table[2] == "| stage 1 | SGD | 16 | 40 | 2.500e-01 | 5.000e-01 | 5.00e-01 | 2.00 | 1.50 | 20 |"


@pytest.mark.slow
def test_main_returns_0_when_every_check_passes_and_1_when_one_fails(tmp_path, monkeypatch, capsys):
    assert milestone.ACCEPTS_QUICK is True
    threads = torch.get_num_threads()
    quick = replace(TINY, small_steps=30, small_examples=8)
    monkeypatch.setattr(milestone, "QUICK", quick)
    assert milestone.main(["--quick", "--out", str(tmp_path / "ok")]) == 0
    printed = capsys.readouterr().out
    assert "| stage 1 | SGD | 8 | 30 |" in printed and "[pass] stage 3 + Adam test MSE" in printed
    assert torch.get_num_threads() == threads  # the milestone's thread setting does not leak out

    monkeypatch.setattr(milestone, "QUICK", replace(quick, max_test_mse_fraction=1e-12))
    assert milestone.main(["--quick", "--out", str(tmp_path / "fail")]) == 1
    assert "[FAIL] stage 3 + Adam test MSE" in capsys.readouterr().out
    saved = json.loads((tmp_path / "fail" / "results.json").read_text())
    assert saved["passed"] is False
    assert [name for name, check in saved["checks"].items() if not check["passed"]] == [
        "stage 3 + Adam test MSE <= 1e-10% of Var(y)"
    ]


def test_the_top_level_runner_finds_this_milestone():
    from simplellm.__main__ import available_milestones

    assert "nn" in available_milestones()
