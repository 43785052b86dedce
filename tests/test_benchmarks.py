"""The benchmark scripts run and report sane figures (speed goals themselves live in benchmarks/)."""

import math

from benchmarks import autograd_engine


def test_autograd_benchmark_runs_and_reports_every_row():
    rows = autograd_engine.run(steps=2, compare_steps=1, repeats=1, chain=2000)
    assert len(rows) == 6
    for row in rows:
        assert row["nodes/s"] > 0 and row["nodes/step"] > 0
    dot, textbook = rows[0], rows[1]
    # the fused neuron builds one node per neuron where the textbook one builds 2n
    assert dot["nodes/step"] < textbook["nodes/step"] / 3
    table = autograd_engine.markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "MLP recipe" in table
    assert all(math.isfinite(r["s/step"]) for r in rows[:5])


def test_closure_engine_computes_the_same_gradients_as_ours():
    from simplellm.autograd import Value

    a, b = Value(1.5), Value(-2.0)
    ca, cb = autograd_engine.ClosureValue(1.5), autograd_engine.ClosureValue(-2.0)
    ((a * b + a).relu() * a + b * b).backward()
    ((ca * cb + ca).relu() * ca + cb * cb).backward()
    assert (a.grad, b.grad) == (ca.grad, cb.grad)
