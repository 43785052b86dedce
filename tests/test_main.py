"""``python -m simplellm`` finds the milestones that exist and runs them in order."""

from simplellm import MILESTONES
from simplellm import __main__ as runner


def test_available_milestones_are_in_curriculum_order():
    found = runner.available_milestones()
    assert "autograd" in found
    assert found == [tier for tier in MILESTONES if tier in found]


def test_runner_runs_a_milestone_and_says_where_results_went(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert runner.main(["--only", "autograd"]) == 0
    out = capsys.readouterr().out
    assert "autograd  passed" in out and "runs/autograd/" in out
    assert (tmp_path / "runs" / "autograd" / "results.json").exists()
