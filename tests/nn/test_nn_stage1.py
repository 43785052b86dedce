"""Stage 1 (the MLP on our scalar engine): its structure, its API, and its gradients against PyTorch."""

from __future__ import annotations

import math
import random
import statistics

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simplellm.autograd import Value
from simplellm.nn import stage1_value as s1

torch.set_num_threads(1)


def test_neuron_dot_equals_the_chain_of_multiplies_and_adds_in_value_and_gradients():
    rng = random.Random(3)
    neuron = s1.Neuron(7, relu=False, rng=rng)
    neuron.b.data = 0.37
    xs_fast = [Value(rng.uniform(-2, 2)) for _ in range(7)]
    xs_slow = [Value(x.data) for x in xs_fast]
    fast = neuron(xs_fast) * 1.7
    fast.backward()
    grads_fast = [p.grad for p in neuron.parameters()] + [x.grad for x in xs_fast]
    neuron.zero_grad()
    slow = sum(wi * xi for wi, xi in zip(neuron.w, xs_slow, strict=True)) + neuron.b
    slow = slow * 1.7
    slow.backward()
    grads_slow = [p.grad for p in neuron.parameters()] + [x.grad for x in xs_slow]
    assert fast.data == slow.data  # bit for bit: the same additions in the same order
    assert grads_fast == grads_slow
    assert len(neuron(xs_fast).parents) == 2  # one dot node and the bias, instead of 2n nodes


def test_parameter_count_layout_and_activations():
    model = s1.MLP(2, [16, 16, 1], seed=0)
    assert len(model.parameters()) == (2 * 16 + 16) + (16 * 16 + 16) + (16 + 1)
    assert [len(layer.neurons) for layer in model.layers] == [16, 16, 1]
    assert [layer.neurons[0].relu for layer in model.layers] == [True, True, False]
    assert isinstance(model([0.5, -0.5]), Value)
    wide = s1.MLP(3, [4, 2], seed=0)([1.0, 2.0, 3.0])
    assert isinstance(wide, list) and len(wide) == 2
    assert wide[0].op == "+"  # the output layer is linear: no relu node on top


def test_relu_hidden_layer_outputs_are_never_negative():
    model = s1.MLP(2, [32, 1], seed=1)
    for x in ([0.3, -0.9], [-1.0, 1.0], [5.0, 2.0]):
        assert all(v.data >= 0.0 for v in model.layers[0](x))


def test_kaiming_initialisation_has_the_right_spread_and_zero_biases():
    model = s1.MLP(400, [400, 1], seed=0)
    hidden = [w.data for n in model.layers[0].neurons for w in n.w]
    output = [w.data for w in model.layers[1].neurons[0].w]
    assert statistics.pstdev(hidden) == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert abs(statistics.fmean(hidden)) < 0.002
    assert statistics.pstdev(output) == pytest.approx(math.sqrt(1 / 400), rel=0.15)
    assert all(n.b.data == 0.0 for layer in model.layers for n in layer.neurons)


def test_seed_fixes_the_weights():
    assert s1.MLP(2, [4, 1], seed=5).get_weights() == s1.MLP(2, [4, 1], seed=5).get_weights()
    assert s1.MLP(2, [4, 1], seed=5).get_weights() != s1.MLP(2, [4, 1], seed=6).get_weights()


def test_zero_grad_resets_every_parameter():
    model = s1.MLP(2, [3, 1], seed=0)
    model([1.0, 2.0]).backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


def test_backward_accumulates_until_zero_grad():
    model = s1.MLP(2, [3, 1], seed=0)
    model([1.0, 2.0]).backward()
    once = [p.grad for p in model.parameters()]
    model([1.0, 2.0]).backward()
    assert [p.grad for p in model.parameters()] == [2 * g for g in once]


def test_weights_round_trip_and_from_weights_rebuilds_the_same_function():
    model = s1.MLP(3, [5, 4, 2], seed=2)
    weights = model.get_weights()
    assert [len(layer["weight"]) for layer in weights] == [5, 4, 2]
    assert [len(layer["weight"][0]) for layer in weights] == [3, 5, 4]
    clone = s1.MLP.from_weights(weights)
    assert clone.get_weights() == weights
    x = [0.1, -0.7, 1.3]
    assert [v.data for v in clone(x)] == [v.data for v in model(x)]
    other = s1.MLP(3, [5, 4, 2], seed=9)
    other.load_weights(weights)
    assert other.get_weights() == weights


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: s1.MLP(2, [4, 1])([1.0, 2.0, 3.0]), "expected an input of length 2, got length 3"),
        (lambda: s1.MLP(2, [4, 1])([1.0]), "expected an input of length 2, got length 1"),
        (lambda: s1.MLP(2, []), "layer_sizes is empty"),
        (lambda: s1.MLP(0, [1]), "positive integers"),
        (lambda: s1.MLP(2, [4, 0]), "positive integers"),
        (lambda: s1.MLP(2, [2.5, 1]), "positive integers"),
        (lambda: s1.MLP(2, [4, 1]).load_weights(s1.MLP(3, [4, 1]).get_weights()), "do not fit"),
        (lambda: s1.MLP.from_weights([{"weight": [[1.0, 2.0], [3.0]], "bias": [0.0, 0.0]}]), "lengths"),
        (lambda: s1.MLP.from_weights([{"weight": [[1.0]], "bias": [0.0, 0.0]}]), "1 weight rows but 2"),
        (lambda: s1.mse_loss(s1.MLP(2, [4, 2]), [[1.0, 2.0]], [1.0]), "one-output"),
        (lambda: s1.mse_loss(s1.MLP(2, [4, 1]), [[1.0, 2.0]], [1.0, 2.0]), "1 inputs and 2 targets"),
        (lambda: s1.SGD([], lr=0.1), "empty parameter list"),
        (lambda: s1.SGD(s1.MLP(2, [1]).parameters(), lr=-0.1), "Invalid learning rate"),
        (lambda: s1.SGD(s1.MLP(2, [1]).parameters(), lr=0.1, momentum=-1), "Invalid momentum"),
        (lambda: s1.Adam(s1.MLP(2, [1]).parameters(), lr=0.1, betas=(0.9, 1.0)), "beta parameter at index 1"),
        (lambda: s1.Adam(s1.MLP(2, [1]).parameters(), lr=0.1, weight_decay=-1), "Invalid weight_decay"),
    ],
)
def test_bad_arguments_raise_value_errors_that_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def torch_mlp_loss(weights, x, target):
    """The same network written directly with torch ops, independent of stages 2 and 3."""
    params = []
    h = torch.tensor(x, dtype=torch.float64)
    for i, layer in enumerate(weights):
        W = torch.tensor(layer["weight"], dtype=torch.float64, requires_grad=True)
        b = torch.tensor(layer["bias"], dtype=torch.float64, requires_grad=True)
        params += [W, b]
        h = W @ h + b
        if i < len(weights) - 1:
            h = torch.relu(h)
    return ((h - target) ** 2).sum(), params


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    n_inputs=st.integers(1, 5),
    data=st.data(),
)
def test_gradient_of_stage1_mlp_equals_torch_for_random_inputs(seed, sizes, n_inputs, data):
    model = s1.MLP(n_inputs, sizes, seed=seed)
    rng = random.Random(seed)
    for layer in model.layers:  # non-zero biases, so that a ReLU can be off or on either way
        for neuron in layer.neurons:
            neuron.b.data = rng.uniform(-0.5, 0.5)
    floats = st.floats(-3, 3, allow_nan=False)
    x = data.draw(st.lists(floats, min_size=n_inputs, max_size=n_inputs))
    target = data.draw(st.lists(floats, min_size=sizes[-1], max_size=sizes[-1]))
    out = model(x)
    out = out if isinstance(out, list) else [out]
    loss = Value.sum([(o - t) ** 2 for o, t in zip(out, target, strict=True)])
    loss.backward()

    reference, params = torch_mlp_loss(model.get_weights(), x, torch.tensor(target, dtype=torch.float64))
    reference.backward()
    assert loss.data == pytest.approx(reference.item(), rel=1e-12, abs=1e-12)
    ours = [[[w.grad for w in n.w] for n in layer.neurons] for layer in model.layers]
    ours_b = [[n.b.grad for n in layer.neurons] for layer in model.layers]
    for i in range(len(model.layers)):
        torch.testing.assert_close(
            torch.tensor(ours[i], dtype=torch.float64), params[2 * i].grad, rtol=1e-10, atol=1e-12
        )
        torch.testing.assert_close(
            torch.tensor(ours_b[i], dtype=torch.float64), params[2 * i + 1].grad, rtol=1e-10, atol=1e-12
        )


def test_gradient_of_stage1_mlp_equals_central_finite_differences():
    model = s1.MLP(3, [5, 4, 1], seed=7)
    rng = random.Random(7)
    for p in model.parameters():
        p.data += rng.uniform(-0.3, 0.3)  # non-zero biases too
    X = [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(6)]
    y = [rng.uniform(-1, 1) for _ in range(6)]
    model.zero_grad()
    s1.mse_loss(model, X, y).backward()
    h = 1e-6
    for p in model.parameters():
        old = p.data
        p.data = old + h
        up = s1.mse(model, X, y)
        p.data = old - h
        down = s1.mse(model, X, y)
        p.data = old
        assert p.grad == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-8)
    assert len(model.parameters()) == 49
    assert sum(p.grad != 0.0 for p in model.parameters()) > 30  # most of them are exercised
