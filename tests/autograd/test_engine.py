"""Engine behaviour: deep graphs, accumulation, errors, numerical edge cases, memory, display."""

import gc
import math
import sys

import numpy as np
import pytest

from simplellm.autograd import Value, draw, to_dot, topological_order


def test_chain_of_100000_nodes_backpropagates_without_recursion():
    limit = sys.getrecursionlimit()
    x = Value(0.5)
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad == 1.0
    assert sys.getrecursionlimit() == limit  # not raised behind our back
    del y  # freeing a 200,000-deep chain must not overflow the C stack either


def test_backward_twice_accumulates_into_leaves_like_torch():
    import torch

    a, b = Value(2.0), Value(-3.0)
    out = (a * b).tanh() + a * a
    out.backward()
    first = (a.grad, b.grad)
    out.backward()
    ta = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(-3.0, dtype=torch.float64, requires_grad=True)
    t_out = (ta * tb).tanh() + ta * ta
    t_out.backward(retain_graph=True)
    t_out.backward()
    assert (a.grad, b.grad) == pytest.approx((ta.grad.item(), tb.grad.item()), rel=1e-15)
    assert (a.grad, b.grad) == pytest.approx((2 * first[0], 2 * first[1]), rel=1e-15)


def test_intermediate_grad_is_from_the_latest_backward():
    a = Value(1.5)
    mid = a * 2
    out = mid * mid
    out.backward()
    out.backward()
    assert mid.grad == pytest.approx(2 * mid.data)  # d out / d mid, not doubled
    assert a.grad == pytest.approx(2 * 2 * 2 * mid.data)


@pytest.mark.parametrize("bad", ["2", [1.0], None, {"a": 1}, 1 + 2j])
def test_unsupported_operands_raise_type_error_naming_the_type(bad):
    v = Value(1.0)
    for op in (
        lambda: v + bad,
        lambda: bad + v,
        lambda: v * bad,
        lambda: bad * v,
        lambda: v - bad,
        lambda: v / bad,
        lambda: v**bad,
    ):
        with pytest.raises(TypeError, match=type(bad).__name__):
            op()
    with pytest.raises(TypeError, match=type(bad).__name__):
        Value(bad)


def test_value_exponent_is_a_clear_type_error():
    with pytest.raises(TypeError, match="exponent"):
        Value(2.0) ** Value(3.0)
    with pytest.raises(TypeError, match="exponent"):
        2.0 ** Value(3.0)


@pytest.mark.parametrize("scalar", [np.float64(2.5), np.float32(2.5), np.int64(2), np.int32(2)])
def test_numpy_scalars_on_either_side_give_values(scalar):
    v = Value(4.0)
    for result, expected in [
        (v + scalar, 4.0 + float(scalar)),
        (scalar + v, float(scalar) + 4.0),
        (scalar * v, float(scalar) * 4.0),
        (scalar - v, float(scalar) - 4.0),
        (scalar / v, float(scalar) / 4.0),
        (v / scalar, 4.0 / float(scalar)),
        (v**scalar, 4.0 ** float(scalar)),
    ]:
        assert type(result) is Value
        assert result.data == pytest.approx(expected, rel=1e-15)


def test_saturating_functions_are_exact_and_finite():
    for x in (400.0, -400.0, 1e6):
        v = Value(x)
        out = v.tanh()
        out.backward()
        assert out.data == math.copysign(1.0, x) and v.grad == 0.0
    for x, expected in ((-1000.0, 0.0), (1000.0, 1.0), (-745.0, math.exp(-745.0))):
        v = Value(x)
        out = v.sigmoid()
        out.backward()
        assert out.data == pytest.approx(expected, rel=1e-12, abs=0)
        assert math.isfinite(v.grad)


def test_exp_overflow_names_the_op():
    assert Value(709.0).exp().data == pytest.approx(math.exp(709.0))
    with pytest.raises(OverflowError, match="exp"):
        Value(710.0).exp()
    assert Value(-1e4).exp().data == 0.0  # underflow to zero is the right value


@pytest.mark.parametrize("x", [0.0, -1.0, -1e-300, float("nan")])
def test_log_of_non_positive_names_the_op(x):
    with pytest.raises(ValueError, match="log"):
        Value(x).log()


def test_division_and_power_edge_cases_raise_clear_errors():
    with pytest.raises(ZeroDivisionError, match="/"):
        Value(1.0) / 0
    with pytest.raises(ZeroDivisionError, match="/"):
        1 / Value(0.0)
    with pytest.raises(ZeroDivisionError, match=r"\*\*"):
        Value(0.0) ** -1
    with pytest.raises(ValueError, match="not a real number"):
        Value(-8.0) ** (1 / 3)
    with pytest.raises(OverflowError, match=r"\*\*"):
        Value(10.0) ** 400
    assert (Value(-2.0) ** 3).data == -8.0
    root = Value(0.0) ** 0.5
    with pytest.raises(ZeroDivisionError, match="infinite"):
        root.backward()


def test_graph_is_freed_by_reference_counting_alone():
    # A backward rule that closed over its own node would keep every graph alive until the
    # cycle collector ran; ours must vanish as soon as the last reference goes.
    def live_values():
        return sum(1 for obj in gc.get_objects() if type(obj) is Value)

    gc.collect()
    gc.disable()
    try:
        before = live_values()
        x = Value(1.0)
        y = x
        for _ in range(1000):
            y = (y * 0.5 + 1.0).tanh()
        y.backward()
        assert live_values() >= before + 3000
        del x, y
        assert live_values() == before
    finally:
        gc.enable()


def test_repr_shows_data_grad_and_op():
    a = Value(2.0, label="a")
    b = a * 3
    assert repr(a) == "Value(2, grad=0, label='a')"
    assert repr(b) == "Value(6, grad=0, op='*')"
    assert b.op == "*" and b.parents[0] is a and b.parents[1].data == 3.0


def test_topological_order_puts_inputs_first():
    a = Value(1.0)
    b = a * 2
    c = b + a
    order = topological_order(c)
    assert order.index(a) < order.index(b) < order.index(c)
    assert len(order) == 4  # a, the constant 2, b and c, each once although a is used twice
    assert len(set(order)) == len(order)


def test_draw_returns_graphviz_source_with_every_node_and_op():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    out = (a * b).tanh()
    out.backward()
    src = draw(out)
    assert src == to_dot(out)
    assert src.startswith("digraph computation {") and src.rstrip().endswith("}")
    assert "a | data 2 | grad" in src and "b | data -3 |" in src
    assert 'label="*"' in src and 'label="tanh"' in src
    assert src.count("shape=record") == 4  # a, b, a*b, tanh
    assert src.count("shape=ellipse") == 2


def test_draw_without_dot_explains_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("shutil.which", lambda name: None)
    src = draw(Value(1.0) + 2, tmp_path / "graph.svg")
    assert "digraph" in src
    assert "apt-get install graphviz" in capsys.readouterr().out
    assert not (tmp_path / "graph.svg").exists()


def test_draw_rejects_bad_rankdir():
    with pytest.raises(ValueError, match="rankdir"):
        to_dot(Value(1.0), rankdir="up")
