"""The NumPy transformer equals the torch GPT loaded with the same weights: logits to 1e-10, every
parameter group's gradient to a relative error below 1e-6 (float64), the training loop step for step,
and generation token for token."""

import math
import re

import numpy as np
import pytest
import torch

from simplellm.lm.datasets import FixedSet
from simplellm.lm.floors import conditional_entropy
from simplellm.lm.models import build_model
from simplellm.lm.models.numpy_transformer import NumpyTransformer, NumpyTransformerConfig, pad_array
from simplellm.lm.numpy_train import blas_threads, clip_gradients, make_optimizer, train_numpy
from simplellm.lm.tokenizers import BOS, EOS, PAD
from simplellm.lm.trainer import TrainConfig, train
from simplellm.nn import numpy_layers

V = 13
SMALL = {"vocab_size": V, "block_size": 10, "n_layer": 2, "n_head": 2, "n_embd": 8}


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """One OpenBLAS thread, as torch gets one: small products on two busy cores run far faster so."""
    before = blas_threads(1)
    yield
    blas_threads(before)


def torch_gpt(tie_weights=False, seed=0):
    """A float64 GPT whose every weight matters: GPT-2's init leaves LayerNorms at (1, 0) and biases at 0,
    where a wrong gradient for them, or through them, could hide."""
    torch.manual_seed(seed)
    gpt = build_model("transformer", **SMALL, tie_weights=tie_weights).double()
    with torch.no_grad():
        for name, p in gpt.named_parameters():
            p.add_(0.3 * torch.randn_like(p) if ("ln" in name or name.endswith("bias")) else 0.2 * p)
    return gpt


def numpy_copy(gpt):
    model = NumpyTransformer(NumpyTransformerConfig(**SMALL, tie_weights=gpt.config.tie_weights))
    model.load_torch_state_dict(gpt.state_dict())
    return model


def padded_batch(seed=0):
    """Framed sequences of different lengths (so PAD targets must be ignored), with repeated tokens."""
    rng = np.random.default_rng(seed)
    lengths = [11, 6, 9, 3, 11]
    seqs = [[BOS, *rng.integers(4, V, size=n - 2).tolist(), EOS] for n in lengths]
    seqs[1][2] = seqs[1][3] = 7
    batch = pad_array(seqs)
    assert (batch == PAD).any() and batch.shape[1] - 1 == SMALL["block_size"]
    return batch


def gradients(gpt, model, batch):
    """(torch loss, torch grads by name, our loss, our grads in torch's layout)."""
    gpt.zero_grad()
    loss = gpt.loss(torch.from_numpy(batch))
    loss.backward()
    model.zero_grad()
    ours, _ = model.loss_and_backward(batch)
    return loss.item(), dict(gpt.named_parameters()), ours, model.torch_layout(model.grads)


def relative_error(ours, reference):
    ours, reference = np.asarray(ours), np.asarray(reference)
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


# one test per parameter group; each group's parameters in every block
GROUPS = {
    "token embedding": r"tok_emb\.weight",
    "position embedding": r"pos_emb\.weight",
    "ln1": r"blocks\.\d\.ln1\.(weight|bias)",
    "attention qkv": r"blocks\.\d\.attn\.qkv\.(weight|bias)",
    "attention proj": r"blocks\.\d\.attn\.proj\.(weight|bias)",
    "ln2": r"blocks\.\d\.ln2\.(weight|bias)",
    "mlp fc": r"blocks\.\d\.mlp\.fc\.(weight|bias)",
    "mlp proj": r"blocks\.\d\.mlp\.proj\.(weight|bias)",
    "final ln": r"ln_f\.(weight|bias)",
    "head": r"head\.weight",
}


@pytest.fixture(scope="module", params=[False, True], ids=["untied", "tied"])
def pair(request):
    gpt = torch_gpt(tie_weights=request.param)
    model = numpy_copy(gpt)
    batch = padded_batch()
    return gpt, model, batch, gradients(gpt, model, batch)


def test_logits_and_loss_equal_the_torch_gpt(pair):
    gpt, model, batch, (torch_loss, _, our_loss, _) = pair
    with torch.no_grad():
        reference = gpt(torch.from_numpy(batch[:, :-1])).numpy()
    logits = model.forward(batch[:, :-1])
    assert logits.dtype == np.float64 and np.abs(logits - reference).max() < 1e-10
    assert abs(our_loss - torch_loss) < 1e-12


@pytest.mark.parametrize("group", GROUPS)
def test_gradient_of_each_parameter_group_equals_torch_autograd(pair, group):
    gpt, _, _, (_, torch_params, _, ours) = pair
    names = [n for n in torch_params if re.fullmatch(GROUPS[group], n)]
    if gpt.config.tie_weights and group == "head":
        names = ["head.weight"]  # the tied matrix: torch lists it once, as tok_emb.weight
        assert torch_params.get("head.weight") is None and gpt.head.weight is gpt.tok_emb.weight
        reference = {"head.weight": gpt.head.weight.grad}
    else:
        reference = {n: torch_params[n].grad for n in names}
    assert names and all(torch.count_nonzero(g) > 0 for g in reference.values())
    for name in names:
        assert relative_error(ours[name], reference[name]) < 1e-6, name


def test_the_tied_matrix_gets_the_lookup_and_the_head_gradients_summed():
    gpt = torch_gpt(tie_weights=True)
    model = numpy_copy(gpt)
    _, _, _, ours = gradients(gpt, model, padded_batch())
    assert "head.W" not in model.params
    assert np.shares_memory(model.head.params["W"], model.tok_emb.params["W"])
    assert model.num_parameters() == gpt.num_parameters()
    assert relative_error(ours["tok_emb.weight"], gpt.tok_emb.weight.grad) < 1e-6
    # either share alone is off (measured: the head's by 3%, the lookup's by 97%); only their sum is right
    assert not model.head.grads["W"].any()  # the head's share was moved into the embedding's gradient
    head_share = (model.head.x.reshape(-1, SMALL["n_embd"]).T @ model.loss_fn.backward().reshape(-1, V)).T
    lookup_share = model.tok_emb.grads["W"] - head_share
    for share in (head_share, lookup_share):
        assert relative_error(share, gpt.tok_emb.weight.grad) > 0.01


def test_a_layer_norm_backward_taken_as_the_identity_is_caught_below_the_head(monkeypatch):
    # the published mistake: LayerNorm's backward passed through as gamma * dout. The head is above the
    # last LayerNorm, so its gradient stays right; everything below is off
    gpt = torch_gpt()
    model = numpy_copy(gpt)
    batch = padded_batch()

    def identity_backward(self, dout):
        axes = tuple(range(dout.ndim - 1))
        self.grads["gamma"] += (dout * self.xhat).sum(axis=axes)
        self.grads["beta"] += dout.sum(axis=axes)
        return dout * self.params["gamma"]

    monkeypatch.setattr(numpy_layers.LayerNorm, "backward", identity_backward)
    _, torch_params, _, ours = gradients(gpt, model, batch)
    errors = {n: relative_error(ours[n], p.grad) for n, p in torch_params.items()}
    above = {"head.weight", "ln_f.weight", "ln_f.bias"}
    assert all(errors[n] < 1e-10 for n in above)
    # measured: 15% to 180% off, five orders of magnitude past the tolerance of the tests above
    assert all(e > 0.1 for n, e in errors.items() if n not in above), errors


def test_gradients_agree_with_central_finite_differences():
    gpt = torch_gpt()
    model = numpy_copy(gpt)
    batch = padded_batch(seed=1)
    model.zero_grad()
    model.loss_and_backward(batch)
    rng = np.random.default_rng(0)
    for name in (
        "tok_emb.W",
        "pos_emb.W",
        "blocks.0.ln1.gamma",
        "blocks.0.attn.qkv.W",
        "blocks.1.mlp.fc.b",
        "ln_f.beta",
        "head.W",
    ):
        p, grad = model.params[name], model.grads[name]
        for _ in range(3):
            i = np.unravel_index(np.argmax(np.abs(grad) * rng.random(grad.shape)), grad.shape)
            saved, h = p[i], 1e-5
            p[i] = saved + h
            up = model.loss_fn(model.forward(batch[:, :-1]), batch[:, 1:])
            p[i] = saved - h
            down = model.loss_fn(model.forward(batch[:, :-1]), batch[:, 1:])
            p[i] = saved
            assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-10), (name, i)


def test_weights_move_both_ways_between_numpy_and_torch():
    model = NumpyTransformer(NumpyTransformerConfig(**SMALL, init_seed=3))
    gpt = build_model("transformer", **model.torch_config()).double()
    gpt.load_state_dict(model.state_dict())  # strict: same names, same shapes
    batch = padded_batch()
    with torch.no_grad():
        reference = gpt(torch.from_numpy(batch[:, :-1])).numpy()
    assert np.abs(model.forward(batch[:, :-1]) - reference).max() < 1e-10
    back = NumpyTransformer(NumpyTransformerConfig(**SMALL))
    back.load_state_dict(gpt.state_dict())
    for name, p in model.params.items():
        np.testing.assert_array_equal(back.params[name], p)
    with pytest.raises(ValueError, match="missing"):
        back.load_state_dict({k: v for k, v in gpt.state_dict().items() if k != "ln_f.bias"})
    wrong_shape = {**gpt.state_dict(), "head.weight": torch.zeros(V, SMALL["n_embd"] + 1)}
    with pytest.raises(ValueError, match="expected shape"):
        back.load_state_dict(wrong_shape)
    np.testing.assert_array_equal(back.params["head.W"], model.params["head.W"])  # nothing half-loaded


def test_our_initialisation_is_gpt2s():
    model = NumpyTransformer(NumpyTransformerConfig(vocab_size=50, block_size=64, n_layer=4, n_embd=64))
    p = model.params
    assert p["tok_emb.W"].std() == pytest.approx(0.02, rel=0.05)
    assert p["blocks.0.attn.proj.W"].std() == pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    assert p["blocks.3.mlp.proj.W"].std() == pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    assert not p["blocks.0.mlp.fc.b"].any() and (p["ln_f.gamma"] == 1).all()
    with pytest.raises(ValueError, match="divisible"):
        NumpyTransformer(NumpyTransformerConfig(vocab_size=5, n_embd=10, n_head=4))


def test_scores_and_generation_equal_the_gpts_within_and_beyond_the_window():
    gpt = torch_gpt()
    model = numpy_copy(gpt)
    rng = np.random.default_rng(5)
    seqs = [[BOS, *rng.integers(4, V, size=n).tolist(), EOS] for n in (1, 4, 9, 15)]  # 17 > block_size
    np.testing.assert_allclose(model.sequence_logprobs(seqs), gpt.sequence_logprobs(seqs), rtol=1e-12)
    contexts = [[BOS], [BOS, 5, 6], [BOS, *range(4, 13), 4, 5, 6]]
    np.testing.assert_allclose(
        model.next_token_logprobs(contexts), gpt.next_token_logprobs(contexts), rtol=1e-12, atol=1e-13
    )
    options = dict(max_new_tokens=14, prompt=[BOS, 5])
    assert model.generate(3, greedy=True, **options) == gpt.generate(3, greedy=True, **options)
    sampled = model.generate(10, seed=4, temperature=0.8, top_k=6, **options)
    assert sampled == gpt.generate(10, seed=4, temperature=0.8, top_k=6, **options)
    assert len({tuple(s) for s in sampled}) > 5  # really sampled


def toy_data(seed=0):
    rng = np.random.default_rng(seed)
    seqs = [[BOS, *rng.integers(4, V, size=rng.integers(1, 14)).tolist(), EOS] for _ in range(40)]
    return lambda: FixedSet(seqs, [], None, {}, seed=seed)


def test_adam_training_equals_the_torch_trainer_step_for_step():
    # AdamW with decoupled weight decay on matrices only, warm-up then cosine, global-norm clipping, and
    # batches cropped to the window: the torch trainer and ours, from the same weights on the same batches
    config = TrainConfig(
        steps=8,
        batch_size=6,
        lr=2e-2,
        min_lr=1e-3,
        warmup_steps=3,
        weight_decay=0.1,
        grad_clip=0.2,
        eval_sequences=0,
        device="cpu",
        progress=False,
    )
    data = toy_data()
    gpt = torch_gpt()
    model = numpy_copy(gpt)
    probe = numpy_copy(gpt)
    probe.loss_and_backward(pad_array(data().next_batch(6, SMALL["block_size"])))
    assert clip_gradients(probe.grads, math.inf) > 2 * config.grad_clip  # clipping is exercised
    train(gpt, data(), config)
    history = train_numpy(model, data(), config, optimizer="adam", schedule="cosine")
    assert len(history.steps) == 8 and history.lr[0] < history.lr[3] > history.lr[-1]
    trained = model.to_torch_state_dict()
    moved = 0.0
    for name, p in gpt.state_dict().items():
        assert relative_error(trained[name], p) < 1e-11, name  # measured: 2e-13
        moved = max(moved, relative_error(p, torch_gpt().state_dict()[name]))
    assert moved > 0.05  # the weights did change


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_sgd_and_adam_learn_three_samples_down_to_the_floor_of_the_whole_prefix(optimizer):
    # the whole batch at every step, as the torch family test does (the data pipeline would cut samples
    # into pieces, and a piece without BOS cannot be predicted from the whole prefix)
    toy = [[BOS, 4, 5, 6, 7, EOS], [BOS, 5, 4, 4, 6, EOS], [BOS, 6, 7, 5, EOS]]
    floor = conditional_entropy(toy, None)  # the first letter is a 1-in-3 guess; then the prefix decides
    assert floor == pytest.approx(3 * math.log(3) / 14)
    model = NumpyTransformer(NumpyTransformerConfig(**SMALL))
    lr = {"sgd": 1.0, "adam": 1e-2}[optimizer]
    opt = make_optimizer(model, optimizer, TrainConfig(lr=lr))
    batch = pad_array(toy)
    for _ in range(300):
        model.zero_grad()
        model.loss_and_backward(batch)
        opt.step()
    assert floor - 1e-9 < model.cross_entropy(toy) < floor + 0.01


def test_a_float32_model_computes_in_float32():
    model = NumpyTransformer(NumpyTransformerConfig(**SMALL, precision="float32"))
    batch = padded_batch()
    assert model.forward(batch[:, :-1]).dtype == np.float32
    model.loss_and_backward(batch)
    assert all(g.dtype == np.float32 for g in model.grads.values())
    model64 = NumpyTransformer(NumpyTransformerConfig(**SMALL))
    np.testing.assert_allclose(model.forward(batch[:, :-1]), model64.forward(batch[:, :-1]), atol=1e-5)
    assert model.state_dict()["head.weight"].dtype == torch.float32
    assert model.next_token_logprobs([[BOS, 5]]).dtype == np.float64
    with pytest.raises(ValueError, match="precision must be"):
        NumpyTransformer(NumpyTransformerConfig(**SMALL, precision="float16"))
