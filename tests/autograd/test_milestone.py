"""The autograd milestone runs, writes its outputs, and fails when its checks fail."""

import json

from simplellm.autograd import test as milestone


def test_milestone_passes_and_writes_results(tmp_path, capsys):
    assert milestone.main(["--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert all(results["checks"].values())
    assert abs(results["final"]["a"] - 2.5) <= 1e-6 and abs(results["final"]["b"] + 0.7) <= 1e-6
    assert results["max_step_loss_difference"] <= 1e-9
    assert len(results["losses"]) == len(results["torch_losses"]) == 200
    assert (tmp_path / "loss.png").stat().st_size > 1000
    assert (tmp_path / "graph.dot").read_text().startswith("digraph")
    assert "| a | 2.5000000000 |" in capsys.readouterr().out


def test_milestone_exits_non_zero_when_a_check_fails(tmp_path, capsys):
    # Five steps cannot recover a and b to 1e-6: the milestone must say so, not pass.
    assert milestone.main(["--out", str(tmp_path), "--steps", "5"]) == 1
    assert "[FAIL] a recovered to 1e-6" in capsys.readouterr().out
