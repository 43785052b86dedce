"""Every NumPy layer against PyTorch autograd (float64, relative error < 1e-7) and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from simplellm.nn import numpy_layers as L

torch.set_num_threads(1)
F64 = torch.float64
TORCH_TOLERANCE = 1e-7  # the bound; float64 agreement is in fact about 1e-15
FD_TOLERANCE = 1e-6  # central differences with h = 1e-6: truncation and rounding both far below this


def relative_error(ours, reference) -> float:
    ours = np.asarray(ours, dtype=np.float64)
    reference = reference.detach().numpy() if isinstance(reference, torch.Tensor) else np.asarray(reference)
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    scale = max(np.abs(ours).max(initial=0.0), np.abs(reference).max(initial=0.0))
    return 0.0 if scale == 0.0 else float(np.abs(ours - reference).max() / scale)


def numerical_gradient(f, array: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f() / d array by central differences, perturbing ``array`` in place one entry at a time."""
    grad = np.zeros_like(array)
    for i in range(array.size):
        old = array.flat[i]
        array.flat[i] = old + h
        up = f()
        array.flat[i] = old - h
        down = f()
        array.flat[i] = old
        grad.flat[i] = (up - down) / (2 * h)
    return grad


def check_layer(layer, x, torch_forward, torch_params, seed=0, differentiable_input=True):
    """Forward, input gradient and every parameter gradient against torch, then against finite differences.

    The loss is ``sum(out * G)`` with a random ``G``, so every output entry's gradient is exercised.
    ``torch_params`` maps our parameter names to ``(torch tensor, convert)`` where ``convert`` turns the
    torch gradient into our layout.
    """
    out = layer(x)
    G = np.random.default_rng(seed).standard_normal(out.shape)
    layer.zero_grad()
    dx = layer.backward(G)

    x_t = torch.tensor(x, requires_grad=differentiable_input, dtype=F64 if differentiable_input else None)
    out_t = torch_forward(x_t)
    (out_t * torch.tensor(G)).sum().backward()
    assert relative_error(out, out_t) < TORCH_TOLERANCE
    if differentiable_input:
        assert relative_error(dx, x_t.grad) < TORCH_TOLERANCE
    else:
        assert dx is None
    assert set(torch_params) == set(layer.params)
    for name, (param_t, convert) in torch_params.items():
        assert relative_error(layer.grads[name], convert(param_t.grad)) < TORCH_TOLERANCE, name

    def loss() -> float:
        return float(np.sum(layer.forward(x) * G))

    if differentiable_input:
        assert relative_error(dx, numerical_gradient(loss, x)) < FD_TOLERANCE
    for name, param in layer.params.items():
        assert relative_error(layer.grads[name], numerical_gradient(loss, param)) < FD_TOLERANCE, name


def identity(g):
    return g


def transpose(g):
    return g.T


def torch_linear(layer: L.Linear) -> nn.Linear:
    """A torch layer with our weights: torch stores (out, in), we store (in, out)."""
    linear = nn.Linear(layer.in_features, layer.out_features, bias="b" in layer.params, dtype=F64)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(layer.params["W"].T))
        if "b" in layer.params:
            linear.bias.copy_(torch.tensor(layer.params["b"]))
    return linear


def linear_map(prefix: str, linear: nn.Linear) -> dict:
    names = {f"{prefix}W": (linear.weight, transpose)}
    if linear.bias is not None:
        names[f"{prefix}b"] = (linear.bias, identity)
    return names


@pytest.mark.parametrize("bias", [True, False])
def test_linear_on_a_batch_with_two_leading_axes(bias):
    rng = np.random.default_rng(0)
    layer = L.Linear(5, 4, bias=bias, rng=rng)
    assert layer.params["W"].shape == (5, 4) and layer.params["W"].dtype == np.float64
    reference = torch_linear(layer)
    check_layer(layer, rng.standard_normal((2, 3, 5)), reference, linear_map("", reference))


def test_linear_initialisation_follows_torch_default_bounds():
    layer = L.Linear(100, 50, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(100)
    for p in layer.params.values():
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound


def test_embedding_accumulates_repeated_indices():
    rng = np.random.default_rng(1)
    layer = L.Embedding(7, 3, rng=rng)
    idx = np.array([[0, 3, 3, 6, 3], [1, 0, 2, 2, 5]])
    reference = nn.Embedding(7, 3, dtype=F64)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.params["W"]))
    check_layer(
        layer, idx, lambda i: reference(i), {"W": (reference.weight, identity)}, differentiable_input=False
    )
    # Row 3 appears three times: its gradient is the sum of three upstream rows, row 4 gets none.
    G = np.arange(30.0).reshape(2, 5, 3)
    layer.zero_grad()
    layer(idx)
    layer.backward(G)
    np.testing.assert_array_equal(layer.grads["W"][3], G[0, 1] + G[0, 2] + G[0, 4])
    np.testing.assert_array_equal(layer.grads["W"][4], 0.0)


@pytest.mark.parametrize(("scale", "eps"), [(3.0, 1e-5), (0.01, 1e-5), (1.0, 0.1)])
def test_layernorm_with_gain_and_bias(scale, eps):
    # Small inputs make eps matter: the eps placement and the biased variance are then both tested.
    rng = np.random.default_rng(2)
    layer = L.LayerNorm(6, eps=eps)
    layer.load_params({"gamma": rng.standard_normal(6), "beta": rng.standard_normal(6)})
    reference = nn.LayerNorm(6, eps=eps, dtype=F64)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.params["gamma"]))
        reference.bias.copy_(torch.tensor(layer.params["beta"]))
    x = scale * rng.standard_normal((3, 4, 6)) + 0.5
    check_layer(
        layer, x, reference, {"gamma": (reference.weight, identity), "beta": (reference.bias, identity)}
    )


def away_from_zero(shape, seed):
    """Inputs at least 0.1 from 0, so a finite difference never straddles ReLU's kink."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 3.0, size=shape)


@pytest.mark.parametrize(
    ("layer", "reference"),
    [(L.Tanh(), torch.tanh), (L.ReLU(), torch.relu), (L.GELU(), nn.GELU(approximate="tanh"))],
    ids=["tanh", "relu", "gelu"],
)
def test_elementwise_activations(layer, reference):
    check_layer(layer, away_from_zero((4, 7), seed=3), reference, {})


def test_gelu_is_the_tanh_form_not_the_erf_form():
    x = np.linspace(-4, 4, 81)
    ours = L.GELU()(x)
    assert relative_error(ours, F.gelu(torch.tensor(x), approximate="tanh")) < 1e-14
    assert relative_error(ours, F.gelu(torch.tensor(x))) > 1e-5


def test_relu_gradient_at_exactly_zero_is_zero_as_in_torch():
    relu = L.ReLU()
    relu(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(relu.backward(np.ones(3)), [0.0, 0.0, 1.0])


def cross_entropy_check(logits, targets, ignore_index=-100):
    loss_layer = L.SoftmaxCrossEntropy(ignore_index=ignore_index)
    loss = loss_layer(logits, targets)
    dlogits = loss_layer.backward()
    logits_t = torch.tensor(logits, requires_grad=True)
    V = logits.shape[-1]
    reference = F.cross_entropy(
        logits_t.reshape(-1, V), torch.tensor(targets).reshape(-1), ignore_index=ignore_index
    )
    reference.backward()
    return loss_layer, loss, dlogits, reference, logits_t.grad


def test_softmax_cross_entropy_with_ignored_targets_against_torch_and_finite_differences():
    rng = np.random.default_rng(4)
    logits = 2.0 * rng.standard_normal((2, 5, 7))
    targets = rng.integers(0, 7, size=(2, 5))
    targets[0, 1] = targets[1, 4] = -100  # padding
    loss_layer, loss, dlogits, reference, reference_grad = cross_entropy_check(logits, targets)
    assert relative_error(loss, reference) < TORCH_TOLERANCE
    assert relative_error(dlogits, reference_grad) < TORCH_TOLERANCE
    np.testing.assert_array_equal(dlogits[0, 1], 0.0)
    assert (
        relative_error(dlogits, numerical_gradient(lambda: loss_layer(logits, targets), logits))
        < FD_TOLERANCE
    )
    # The mean is over the 8 counted targets, not over all 10 positions.
    counted = targets != -100
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, np.where(counted, targets, 0)[..., None], -1)[..., 0][
        counted
    ].mean()
    assert loss == pytest.approx(expected, rel=1e-12)


def test_softmax_cross_entropy_is_stable_for_huge_logits_and_custom_ignore_index():
    logits = np.array([[1e4, 0.0, -1e4], [5e3, 5e3, 0.0], [3.0, 2.0, 1.0]])
    targets = np.array([1, 0, 2])
    _, loss, dlogits, reference, reference_grad = cross_entropy_check(logits, targets, ignore_index=2)
    assert np.isfinite(loss) and np.isfinite(dlogits).all()
    assert relative_error(loss, reference) < TORCH_TOLERANCE
    assert relative_error(dlogits, reference_grad) < TORCH_TOLERANCE
    assert loss == pytest.approx((1e4 + np.log(2)) / 2, rel=1e-12)


def test_softmax_cross_entropy_with_every_target_ignored_is_nan_with_zero_gradient_like_torch():
    _, loss, dlogits, reference, reference_grad = cross_entropy_check(np.ones((2, 3)), np.array([-100, -100]))
    assert np.isnan(loss) and torch.isnan(reference)
    np.testing.assert_array_equal(dlogits, 0.0)
    np.testing.assert_array_equal(reference_grad.numpy(), 0.0)


class TorchCausalSelfAttention(nn.Module):
    """The reference: nanoGPT's layout on torch's fused scaled_dot_product_attention."""

    def __init__(self, ours: L.CausalSelfAttention) -> None:
        super().__init__()
        self.n_head = ours.n_head
        self.qkv, self.proj = torch_linear(ours.qkv), torch_linear(ours.proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (
            t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in self.qkv(x).split(C, dim=2)
        )
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


def torch_attention_forward_by_hand(ours: L.CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """The same computation spelled out in torch ops, as a second, independent reference."""
    B, T, C = x.shape
    H, D = ours.n_head, C // ours.n_head
    qkv = x @ torch.tensor(ours.params["qkv.W"]) + torch.tensor(ours.params["qkv.b"])
    heads = []
    for h in range(H):
        q, k, v = (qkv[..., block * C + h * D : block * C + (h + 1) * D] for block in range(3))
        scores = q @ k.transpose(-1, -2) / D**0.5
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        heads.append(torch.softmax(scores, dim=-1) @ v)
    return torch.cat(heads, dim=-1) @ torch.tensor(ours.params["proj.W"]) + torch.tensor(
        ours.params["proj.b"]
    )


@pytest.mark.parametrize("n_head", [1, 2, 4])
def test_causal_self_attention_against_torch_sdpa_and_finite_differences(n_head):
    rng = np.random.default_rng(5)
    layer = L.CausalSelfAttention(8, n_head, rng=rng)
    assert sorted(layer.params) == ["proj.W", "proj.b", "qkv.W", "qkv.b"]
    assert layer.params["qkv.W"].shape == (8, 24) and layer.params["proj.W"].shape == (8, 8)
    reference = TorchCausalSelfAttention(layer)
    x = rng.standard_normal((2, 5, 8))
    check_layer(
        layer, x, reference, {**linear_map("qkv.", reference.qkv), **linear_map("proj.", reference.proj)}
    )
    assert relative_error(layer(x), torch_attention_forward_by_hand(layer, torch.tensor(x))) < 1e-12


def test_attention_is_causal_the_past_never_sees_the_future():
    rng = np.random.default_rng(6)
    layer = L.CausalSelfAttention(8, 2, rng=rng)
    x = rng.standard_normal((1, 6, 8))
    before = layer(x).copy()
    x[:, 4:] += 10.0 * rng.standard_normal((1, 2, 8))
    after = layer(x)
    np.testing.assert_array_equal(after[:, :4], before[:, :4])
    assert not np.allclose(after[:, 4:], before[:, 4:])
    # And the gradient confirms it: nothing flows from outputs at t < 4 into inputs at t >= 4.
    dout = np.zeros_like(after)
    dout[:, :4] = 1.0
    np.testing.assert_array_equal(layer.backward(dout)[:, 4:], 0.0)


def test_attention_with_a_single_position_returns_proj_of_its_value():
    layer = L.CausalSelfAttention(4, 2, rng=np.random.default_rng(7))
    x = np.random.default_rng(8).standard_normal((3, 1, 4))
    v = (x @ layer.params["qkv.W"] + layer.params["qkv.b"])[..., 8:]
    np.testing.assert_allclose(layer(x), v @ layer.params["proj.W"] + layer.params["proj.b"], rtol=1e-13)


def make_stack(rng):
    return L.Sequential(
        [L.Linear(4, 8, rng=rng), L.LayerNorm(8), L.GELU(), L.Linear(8, 3, rng=rng), L.Tanh()]
    )


def test_sequential_chains_forward_and_backward_with_dotted_names():
    rng = np.random.default_rng(9)
    model = make_stack(rng)
    model.load_params({"1.gamma": rng.standard_normal(8), "1.beta": rng.standard_normal(8)})
    assert sorted(model.params) == ["0.W", "0.b", "1.beta", "1.gamma", "3.W", "3.b"]
    assert model.params["3.W"] is model[3].params["W"] and model.grads["0.b"] is model[0].grads["b"]
    assert model.num_params() == 4 * 8 + 8 + 8 + 8 + 8 * 3 + 3
    norm = nn.LayerNorm(8, dtype=F64)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor(model.params["1.gamma"]))
        norm.bias.copy_(torch.tensor(model.params["1.beta"]))
    first, last = torch_linear(model[0]), torch_linear(model[3])
    reference = nn.Sequential(first, norm, nn.GELU(approximate="tanh"), last, nn.Tanh())
    names = {
        **linear_map("0.", first),
        **linear_map("3.", last),
        "1.gamma": (norm.weight, identity),
        "1.beta": (norm.bias, identity),
    }
    check_layer(model, rng.standard_normal((6, 4)), reference, names)


def test_sequential_starting_with_an_embedding_has_no_input_gradient():
    rng = np.random.default_rng(10)
    model = L.Sequential([L.Embedding(5, 4, rng=rng), L.Linear(4, 5, rng=rng)])
    out = model(np.array([[1, 2, 2]]))
    assert out.shape == (1, 3, 5)
    assert model.backward(np.ones_like(out)) is None
    assert model.grads["0.W"][2].sum() != 0.0 and model.grads["0.W"][0].sum() == 0.0


def test_backward_accumulates_and_zero_grad_resets_the_same_arrays_in_place():
    rng = np.random.default_rng(11)
    model = make_stack(rng)
    x = rng.standard_normal((3, 4))
    grad_arrays = {name: g for name, g in model.grads.items()}
    model(x)
    model.backward(np.ones((3, 3)))
    once = {name: g.copy() for name, g in model.grads.items()}
    model(x)
    model.backward(np.ones((3, 3)))
    for name, g in model.grads.items():
        np.testing.assert_allclose(g, 2 * once[name], rtol=1e-14)
    model.zero_grad()
    for name, g in model.grads.items():
        assert g is grad_arrays[name] and not g.any()


def test_float32_layers_keep_float32():
    rng = np.random.default_rng(12)
    f32 = np.float32
    model = L.Sequential(
        [
            L.Linear(4, 8, rng=rng, dtype=f32),
            L.LayerNorm(8, dtype=f32),
            L.GELU(),
            L.ReLU(),
            L.Tanh(),
            L.Linear(8, 8, rng=rng, dtype=f32),
        ]
    )
    attention = L.CausalSelfAttention(8, 2, rng=rng, dtype=f32)
    x = rng.standard_normal((2, 3, 4)).astype(f32)
    out = attention(model(x))
    assert out.dtype == f32
    assert model.backward(attention.backward(np.ones_like(out))).dtype == f32
    assert all(g.dtype == f32 for g in [*model.grads.values(), *attention.grads.values()])
    loss = L.SoftmaxCrossEntropy()
    loss(out, np.zeros((2, 3), dtype=np.int64))
    assert loss.backward().dtype == f32


def test_float32_input_gives_float32_input_gradient_even_with_float64_parameters():
    rng = np.random.default_rng(13)
    layer = L.Linear(3, 2, rng=rng)
    layer(rng.standard_normal((4, 3)).astype(np.float32))
    assert layer.backward(np.ones((4, 2))).dtype == np.float32
    layer([[1, 2, 3]])  # integer inputs: the gradient must not be truncated to integers
    np.testing.assert_allclose(layer.backward(np.ones((1, 2))), layer.params["W"].sum(axis=1)[None, :])


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: L.Linear(3, 2, rng=np.random.default_rng(0))(np.ones((4, 5))), ValueError, "last axis of 3"),
        (
            lambda: L.Linear(3, 2, rng=np.random.default_rng(0)).backward(np.ones((4, 2))),
            RuntimeError,
            "before forward",
        ),
        (lambda: L.LayerNorm(3)(np.ones((2, 4))), ValueError, "last axis 3"),
        (
            lambda: L.Embedding(4, 2, rng=np.random.default_rng(0))(np.array([0.0, 1.0])),
            TypeError,
            "integers",
        ),
        (lambda: L.Embedding(4, 2, rng=np.random.default_rng(0))(np.array([0, 4])), IndexError, r"\[0, 4\)"),
        (lambda: L.CausalSelfAttention(6, 4, rng=np.random.default_rng(0)), ValueError, "multiple of n_head"),
        (
            lambda: L.CausalSelfAttention(8, 2, rng=np.random.default_rng(0))(np.ones((3, 8))),
            ValueError,
            r"\(B, T, 8\)",
        ),
        (lambda: L.SoftmaxCrossEntropy()(np.ones((2, 3)), np.array([0, 3])), IndexError, r"\[0, 3\)"),
        (
            lambda: L.SoftmaxCrossEntropy()(np.ones((2, 3)), np.array([0.0, 1.0])),
            ValueError,
            "integer targets",
        ),
        (lambda: L.SoftmaxCrossEntropy()(np.ones((2, 3)), np.array([0, 1, 2])), ValueError, r"shape \(2,\)"),
        (lambda: L.LayerNorm(3).load_params({"gain": np.ones(3)}), KeyError, "gain"),
        (lambda: L.LayerNorm(3).load_params({"gamma": np.ones(4)}), ValueError, "gamma"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
