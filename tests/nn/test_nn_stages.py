"""The three stages are one network: same numbers at every step, only the machinery differs."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from simplellm.nn import stage1_value as s1
from simplellm.nn import stage2_tensor as s2
from simplellm.nn import stage3_torch as s3
from simplellm.nn.datasets import make_quadratic

torch.set_num_threads(1)

STAGES = [s1, s2, s3]
OPTIMIZERS = {
    "sgd": ("SGD", {"lr": 0.05}),
    "sgd-momentum": ("SGD", {"lr": 0.05, "momentum": 0.9}),
    "sgd-momentum-decay": ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}),
    "adam": ("Adam", {"lr": 0.01}),
    "adam-decay": ("Adam", {"lr": 0.01, "weight_decay": 0.01}),
    "adam-betas-eps": ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05}),
}
STEPS = 60


def flat(weights):
    return [v for layer in weights for row in layer["weight"] for v in row] + [
        v for layer in weights for v in layer["bias"]
    ]


def max_difference(a, b):
    return max(abs(x - y) for x, y in zip(flat(a), flat(b), strict=True))


@pytest.fixture(scope="module")
def data():
    return make_quadratic(16, seed=11)


@pytest.fixture(scope="module")
def initial_weights():
    return s1.MLP(2, [8, 8, 1], seed=4).get_weights()


@pytest.mark.parametrize("name", ["sgd-momentum-decay", "adam-decay", "sgd", "adam"])
def test_stage1_and_stage2_give_the_same_loss_at_every_step(name, data, initial_weights):
    X, y = data
    optimizer_name, hyper = OPTIMIZERS[name]
    curves, finals = [], []
    for stage in (s1, s2):
        model = stage.MLP.from_weights(initial_weights)
        optimizer = getattr(stage, optimizer_name)(model.parameters(), **hyper)
        curves.append(stage.train(model, optimizer, X, y, steps=STEPS))
        finals.append(model.get_weights())
    assert len(curves[0]) == STEPS >= 50
    for step, (loss1, loss2) in enumerate(zip(*curves, strict=True)):
        assert abs(loss1 - loss2) <= 1e-9, f"step {step}: stage 1 loss {loss1!r}, stage 2 loss {loss2!r}"
    assert max_difference(*finals) <= 1e-9
    assert curves[0][-1] < 0.5 * curves[0][0]  # it learned: we are not comparing two flat lines


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_our_tensor_optimizers_equal_torch_optim_per_parameter_per_step(name, data, initial_weights):
    X, y = data
    optimizer_name, hyper = OPTIMIZERS[name]
    ours = s2.MLP.from_weights(initial_weights)
    theirs = s3.MLP.from_weights(initial_weights)
    ours_opt = getattr(s2, optimizer_name)(ours.parameters(), **hyper)
    theirs_opt = getattr(torch.optim, optimizer_name)(theirs.parameters(), **hyper)
    assert type(getattr(s3, optimizer_name)(theirs.parameters(), lr=0.1)) is type(theirs_opt)
    for step in range(STEPS):
        (loss_ours,) = s2.train(ours, ours_opt, X, y, steps=1)
        (loss_theirs,) = s3.train(theirs, theirs_opt, X, y, steps=1)
        assert abs(loss_ours - loss_theirs) <= 1e-9, f"step {step}"
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            assert (p - q).abs().max().item() <= 1e-9, f"step {step}"
    assert loss_ours < 0.5 * s2.mse(s2.MLP.from_weights(initial_weights), X, y)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_stage1_optimizers_equal_torch_optim_per_parameter_per_step(name):
    """Drive both with the same gradients (which depend on the parameters) and compare after every step."""
    optimizer_name, hyper = OPTIMIZERS[name]
    model = s1.MLP(3, [4, 2], seed=0)
    params = model.parameters()
    reference = torch.tensor([p.data for p in params], dtype=torch.float64, requires_grad=True)
    ours = getattr(s1, optimizer_name)(params, **hyper)
    theirs = getattr(torch.optim, optimizer_name)([reference], **hyper)
    for step in range(50):
        for i, p in enumerate(params):
            p.grad = math.sin(3.0 * p.data + i) + 0.1 * step
        reference.grad = torch.sin(3.0 * reference.detach() + torch.arange(len(params))) + 0.1 * step
        ours.step()
        theirs.step()
        got = torch.tensor([p.data for p in params], dtype=torch.float64)
        assert (got - reference.detach()).abs().max().item() <= 1e-9, f"step {step}"


def test_adam_bias_correction_makes_the_first_step_lr_times_the_sign_of_the_gradient():
    # Without the correction the first step would be lr * 0.1 / sqrt(0.001), about 3.2 * lr.
    for stage in (s1, s2):
        model = stage.MLP(2, [3, 1], seed=1)
        before = flat(model.get_weights())
        optimizer = stage.Adam(model.parameters(), lr=0.01)
        stage.train(model, optimizer, [[0.3, -0.4], [1.0, 0.5]], [1.0, -2.0], steps=1)
        moved = [abs(b - a) for a, b in zip(before, flat(model.get_weights()), strict=True)]
        assert all(m == pytest.approx(0.01, rel=1e-5) or m == 0.0 for m in moved)
        assert sum(m > 0 for m in moved) > len(moved) // 2


def test_stages_2_and_3_draw_the_same_initial_weights_from_the_same_seed():
    for seed in range(5):
        assert s2.MLP(5, [7, 3, 1], seed=seed).get_weights() == s3.MLP(5, [7, 3, 1], seed=seed).get_weights()
    assert s3.MLP(5, [7, 1], seed=0).get_weights() != s3.MLP(5, [7, 1], seed=1).get_weights()


def test_stage3_does_not_touch_torch_global_random_state():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    s3.MLP(4, [16, 1], seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_the_three_stages_compute_the_same_function(initial_weights):
    X = [[0.1, 0.2], [-0.9, 0.4], [0.7, -0.3]]
    out1 = [s1.MLP.from_weights(initial_weights)(x).data for x in X]
    out2 = s2.MLP.from_weights(initial_weights)(X)[:, 0].tolist()
    out3 = s3.MLP.from_weights(initial_weights)(X)[:, 0].tolist()
    assert out1 == pytest.approx(out2, abs=1e-14) and out2 == pytest.approx(out3, abs=1e-14)


def test_the_three_stages_share_one_api_shape():
    names = ["MLP", "SGD", "Adam", "mse_loss", "mse", "train"]
    for stage in STAGES:
        assert all(hasattr(stage, name) for name in names), stage.__name__

    def arguments(f):
        return [(p.name, p.default) for p in inspect.signature(f).parameters.values() if p.name != "self"]

    for name in ["mse_loss", "mse", "train"]:
        assert len({str(arguments(getattr(stage, name))) for stage in STAGES}) == 1, name
    assert len({str(arguments(stage.MLP.__init__)) for stage in STAGES}) == 1
    # Every argument of our optimizers exists in torch.optim's, with the same default.
    for name in ["SGD", "Adam"]:
        torch_arguments = dict(arguments(getattr(torch.optim, name).__init__))
        for stage in (s1, s2):
            for argument, default in arguments(getattr(stage, name).__init__):
                assert argument in torch_arguments, (stage.__name__, name, argument)
                if default is not inspect.Parameter.empty:
                    assert torch_arguments[argument] == default, (stage.__name__, name, argument)


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.__name__.split(".")[-1])
def test_every_stage_counts_parameters_alike_and_zero_grad_clears_them(stage):
    model = stage.MLP(2, [16, 16, 1], seed=0)
    params = list(model.parameters())
    assert sum(1 if stage is s1 else p.numel() for p in params) == 337

    def nonzero_gradients():
        grads = [p.grad for p in params if p.grad is not None]
        return sum(g != 0.0 if stage is s1 else int((g != 0).sum()) for g in grads)

    stage.mse_loss(model, [[0.5, -0.2], [0.1, 0.9]], [1.0, 0.0]).backward()
    assert nonzero_gradients() > 100
    model.zero_grad()
    assert nonzero_gradients() == 0


@pytest.mark.parametrize("stage", [s2, s3], ids=lambda s: s.__name__.split(".")[-1])
def test_tensor_stages_reject_bad_inputs_with_the_sizes_in_the_message(stage):
    model = stage.MLP(2, [4, 1])
    with pytest.raises(ValueError, match=r"expected inputs of length 2, got shape \(5, 3\)"):
        model(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="one-output"):
        stage.mse_loss(stage.MLP(2, [4, 2]), [[1.0, 2.0]], [1.0])
    with pytest.raises(ValueError, match=r"inputs of shape \(1, 2\) and targets of shape \(2,\)"):
        stage.mse_loss(model, [[1.0, 2.0]], [1.0, 2.0])
    with pytest.raises(ValueError, match="do not fit"):
        model.load_weights(stage.MLP(3, [4, 1]).get_weights())
    with pytest.raises(ValueError, match="layer_sizes is empty"):
        stage.MLP(2, [])


def test_our_tensor_optimizers_validate_like_torch_optim():
    params = s2.MLP(2, [1]).parameters()
    for make in (lambda: s2.SGD(params, lr=-1.0), lambda: torch.optim.SGD(params, lr=-1.0)):
        with pytest.raises(ValueError, match="Invalid learning rate"):
            make()
    with pytest.raises(ValueError, match="empty parameter list"):
        s2.Adam([], lr=0.1)


def test_tensor_optimizers_skip_parameters_without_gradient_like_torch():
    used, unused = (torch.ones(2, dtype=torch.float64, requires_grad=True) for _ in range(2))
    for make in (s2.SGD, s2.Adam):
        optimizer = make([used, unused], lr=0.1)
        (used * 3).sum().backward()
        optimizer.step()
        assert torch.equal(unused, torch.ones(2, dtype=torch.float64))
        assert not torch.equal(used, torch.ones(2, dtype=torch.float64))
        optimizer.zero_grad()
        assert used.grad is None
