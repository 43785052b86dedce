"""``python -m benchmarks`` runs every benchmark and writes one Markdown report."""

import importlib.util

from benchmarks import __main__ as aggregator


def test_quick_run_writes_a_report_with_the_machine_and_a_section_per_benchmark(tmp_path, capsys):
    out = tmp_path / "report.md"
    assert (
        aggregator.main(["--quick", "--out", str(out), "--only", "autograd_engine", "transformer_speed"]) == 0
    )
    report = out.read_text()
    assert report == capsys.readouterr().out and report.endswith("\n")
    for line in ("- date: ", "- machine: ", "torch ", "numpy ", "load average", "Quick run"):
        assert line in report
    assert "## The scalar engine" in report and "## The GPT" in report
    assert "| MLP recipe, Value.dot neurons (stage 1) |" in report
    assert "| training (fwd+bwd+AdamW), 1 layer" in report
    standing = report.split("## Where we stand against the targets")[1].split("##")[0]
    assert "target < 0.1 s/step" in standing and "target >= 1x" in standing
    assert "NumPy" not in report  # not asked for


def test_an_absent_optional_benchmark_gets_a_line_instead_of_a_table(monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "benchmarks.numpy_vs_torch" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    report = aggregator.run_all(quick=True, only=["numpy_vs_torch"])
    assert "## The NumPy transformer" in report
    assert "Not run: `benchmarks/numpy_vs_torch.py` is not in this checkout." in report
    assert "- (none run)" in report


def test_quick_without_out_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(aggregator, "HERE", tmp_path)
    monkeypatch.setattr(aggregator, "run_all", lambda quick, only: "# report")
    assert aggregator.main(["--quick"]) == 0
    assert list(tmp_path.iterdir()) == []
    assert aggregator.main([]) == 0
    assert (tmp_path / "RESULTS.md").read_text() == "# report"


def test_the_numpy_benchmark_runs_through_the_aggregator_when_present():
    if importlib.util.find_spec("benchmarks.numpy_vs_torch") is None:
        return  # not merged into this checkout: the test above covers its absence
    report = aggregator.run_all(quick=True, only=["numpy_vs_torch"])
    assert "## The NumPy transformer" in report and "| float64 |" in report and "| float32 |" in report


def test_the_standing_says_when_the_rounds_disagree_with_the_median():
    def row(median, low, high):
        return {"benchmark": "training x", "threads": 1, "sdpa/pytorch": median, "range": (low, high)}

    rows = [row(1.2, 1.1, 1.3), row(1.02, 0.95, 1.1), row(0.98, 0.9, 1.05), row(0.8, 0.7, 0.9)]
    lines = aggregator.standing({"transformer_speed": rows + [{**row(0.5, 0.4, 0.6), "threads": 2}]})
    verdicts = [line.split("**")[1] for line in lines]
    assert verdicts == ["met", "met, within the noise", "missed, within the noise", "missed"]
