"""Every op's value and gradient against PyTorch (float64) and against finite differences."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from simplellm.autograd import Value

finite = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0.05, max_value=5.0)

UNARY = {
    "neg": (lambda v: -v, lambda t: -t, finite),
    "exp": (lambda v: v.exp(), torch.exp, finite),
    "log": (lambda v: v.log(), torch.log, positive),
    "tanh": (lambda v: v.tanh(), torch.tanh, finite),
    "relu": (lambda v: v.relu(), torch.relu, finite.filter(lambda x: abs(x) > 1e-6)),
    "sigmoid": (lambda v: v.sigmoid(), torch.sigmoid, finite),
    "pow2": (lambda v: v**2, lambda t: t**2, finite),
    "pow3": (lambda v: v**3, lambda t: t**3, finite),
    "pow-1": (lambda v: v**-1, lambda t: t**-1, positive),
    "pow0.5": (lambda v: v**0.5, lambda t: t**0.5, positive),
}

BINARY = {
    "add": (lambda a, b: a + b, finite, finite),
    "sub": (lambda a, b: a - b, finite, finite),
    "mul": (lambda a, b: a * b, finite, finite),
    "div": (lambda a, b: a / b, finite, positive),
}


def torch_value_and_grad(fn, *xs):
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    out = fn(*ts)
    out.backward()
    return out.item(), [t.grad.item() if t.grad is not None else 0.0 for t in ts]


def ours_value_and_grad(fn, *xs):
    vs = [Value(x) for x in xs]
    out = fn(*vs)
    out.backward()
    return out.data, [v.grad for v in vs]


def central_difference(fn, xs, i, h=1e-6):
    up = list(xs)
    down = list(xs)
    up[i] += h
    down[i] -= h
    return (fn(*[Value(x) for x in up]).data - fn(*[Value(x) for x in down]).data) / (2 * h)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_op_matches_torch_and_finite_differences(name):
    ours, theirs, domain = UNARY[name]

    @given(domain)
    def check(x):
        value, (grad,) = ours_value_and_grad(ours, x)
        t_value, (t_grad,) = torch_value_and_grad(theirs, x)
        assert value == pytest.approx(t_value, rel=1e-12, abs=1e-12)
        assert grad == pytest.approx(t_grad, rel=1e-12, abs=1e-12)
        assert grad == pytest.approx(central_difference(ours, [x], 0), rel=1e-5, abs=1e-6)

    check()


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_op_matches_torch_and_finite_differences(name):
    fn, left, right = BINARY[name]

    @given(left, right)
    def check(a, b):
        value, grads = ours_value_and_grad(fn, a, b)
        t_value, t_grads = torch_value_and_grad(fn, a, b)
        assert value == pytest.approx(t_value, rel=1e-12, abs=1e-12)
        assert grads == pytest.approx(t_grads, rel=1e-12, abs=1e-12)
        for i in range(2):
            assert grads[i] == pytest.approx(central_difference(fn, [a, b], i), rel=1e-5, abs=1e-6)

    check()


@pytest.mark.parametrize("name", sorted(BINARY))
@given(st.floats(min_value=0.5, max_value=3.0), st.sampled_from([2, 3.5, -1.25]))
def test_python_numbers_on_either_side(name, x, k):
    fn = BINARY[name][0]
    right = fn(Value(x), k)
    left = fn(k, Value(x))
    assert right.data == pytest.approx(fn(x, k), rel=1e-15)
    assert left.data == pytest.approx(fn(k, x), rel=1e-15)


def composite(a, b, c):
    # Reuses a, b and intermediate d several times: every path must contribute.
    d = a * b + c.tanh()
    e = d * d / (b * b + 1) - (a + 2).sigmoid() * 3
    f = (e + d.exp() * 0.1).relu() + ((c * c + 1).log() + 1) ** 0.5
    return f * a - d / 2


@given(finite, finite, finite)
def test_composite_expression_with_reuse_matches_torch(a, b, c):
    value, grads = ours_value_and_grad(composite, a, b, c)
    t_value, t_grads = torch_value_and_grad(composite, a, b, c)
    assert value == pytest.approx(t_value, rel=1e-10, abs=1e-10)
    assert grads == pytest.approx(t_grads, rel=1e-9, abs=1e-9)


@given(finite, finite, finite)
def test_composite_expression_matches_finite_differences(a, b, c):
    _, grads = ours_value_and_grad(composite, a, b, c)
    for i in range(3):
        xs = [a, b, c]
        # relu's kink makes the finite difference meaningless right at the kink
        kink = [composite(*[Value(x + s * (j == i) * 1e-6) for j, x in enumerate(xs)]) for s in (-1, 1)]
        if (kink[0].data > 0) != (kink[1].data > 0):
            continue
        assert grads[i] == pytest.approx(central_difference(composite, xs, i), rel=1e-4, abs=1e-5)


def test_reused_node_gets_every_contribution():
    x = Value(3.0)
    (x * x).backward()
    assert x.grad == 6.0
    y = Value(2.0)
    z = y + y + y
    z.backward()
    assert y.grad == 3.0


@given(st.lists(finite, min_size=1, max_size=20), st.lists(finite, min_size=1, max_size=20))
def test_dot_and_sum_equal_the_chained_ops(ws, xs):
    n = min(len(ws), len(xs))
    w1 = [Value(v) for v in ws[:n]]
    x1 = [Value(v) for v in xs[:n]]
    w2 = [Value(v) for v in ws[:n]]
    x2 = [Value(v) for v in xs[:n]]
    fused = Value.dot(w1, x1) + Value.sum(x1)
    chained = x2[0] * w2[0]
    for wi, xi in zip(w2[1:], x2[1:], strict=True):
        chained = chained + wi * xi
    total = x2[0]
    for xi in x2[1:]:
        total = total + xi
    chained = chained + total
    (fused * fused).backward()
    (chained * chained).backward()
    assert fused.data == chained.data
    assert [v.grad for v in w1 + x1] == pytest.approx([v.grad for v in w2 + x2], rel=1e-12, abs=1e-12)


def test_dot_with_mismatched_lengths_raises():
    with pytest.raises(ValueError, match="2 weights but 3 inputs"):
        Value.dot([Value(1), Value(2)], [1, 2, 3])


def test_log_and_exp_are_inverse_and_sigmoid_matches_formula():
    x = Value(0.7)
    assert x.exp().log().data == pytest.approx(0.7, rel=1e-15)
    assert x.sigmoid().data == pytest.approx(1 / (1 + math.exp(-0.7)), rel=1e-15)
