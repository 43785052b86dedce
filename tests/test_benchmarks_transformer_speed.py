"""The transformer benchmark: PyTorch's modules compute our GPT's function from our weights, the
re-reading contender really re-reads, and a tiny run reports well-formed rows."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from benchmarks import transformer_speed as ts
from simplellm.lm.models.transformer import GPT, GPTConfig

SMALL = GPTConfig(vocab_size=12, block_size=8, n_layer=2, n_head=2, n_embd=16)


def small_gpt(**options) -> GPT:
    torch.manual_seed(0)
    model = GPT(GPTConfig(**{**SMALL.__dict__, **options})).double()
    with torch.no_grad():  # GPT-2's init leaves biases and LayerNorms trivial: make every weight count
        for name, p in model.named_parameters():
            if "ln" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.fixture
def idx():
    return torch.randint(0, 12, (3, 8), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("attention", ["explicit", "sdpa"])
def test_pytorch_modules_compute_our_function_with_our_weights(attention, idx):
    ours = small_gpt(attention=attention)
    reference = ts.EncoderStackGPT.from_gpt(ours)
    assert reference.num_parameters() == ours.num_parameters()
    assert reference.head.weight.dtype == torch.float64
    # training path (autograd on): logits and every gradient
    ours.loss(idx).backward()
    reference.loss(idx).backward()
    torch.testing.assert_close(reference(idx), ours(idx), rtol=0, atol=1e-10)
    grads = ts.encoder_state_dict({name: p.grad for name, p in ours.named_parameters()})
    for name, p in reference.named_parameters():
        torch.testing.assert_close(p.grad, grads[name], rtol=0, atol=1e-10)
    assert ours.blocks[1].mlp.fc.weight.grad.abs().max() > 1e-3
    # inference path (eval, no autograd), the one generation takes
    with ours.evaluating(), reference.evaluating():
        torch.testing.assert_close(reference(idx), ours(idx), rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        reference.next_token_logprobs([[2, 5, 6], [2]]),
        ours.next_token_logprobs([[2, 5, 6], [2]]),
        atol=1e-10,
    )


def test_the_state_dict_mapping_renames_every_weight_once():
    state = small_gpt().state_dict()
    mapped = ts.encoder_state_dict(state)
    assert len(mapped) == len(state)
    assert set(mapped) == set(ts.EncoderStackGPT(SMALL).state_dict())
    assert mapped["encoder.layers.1.self_attn.in_proj_weight"] is state["blocks.1.attn.qkv.weight"]
    assert mapped["encoder.layers.0.linear2.bias"] is state["blocks.0.mlp.proj.bias"]
    assert mapped["encoder.norm.weight"] is state["ln_f.weight"]


def test_the_reference_refuses_options_it_does_not_mirror():
    for options in ({"positions": "sinusoidal"}, {"tie_weights": True}, {"bias": False}):
        with pytest.raises(ValueError, match="reference mirrors"):
            ts.EncoderStackGPT(GPTConfig(**{**SMALL.__dict__, **options}))


def test_an_nn_gelu_puts_pytorch_on_its_fast_path_which_computes_the_exact_gelu(idx):
    """Why the reference's activation is a plain function (the claim in ``tanh_gelu``'s docstring)."""
    ours = small_gpt()
    with_module = ts.EncoderStackGPT.from_gpt(ours, activation=nn.GELU(approximate="tanh"))
    training_path = with_module(idx)  # autograd on: the layer's Python code, tanh GELU
    torch.testing.assert_close(training_path, ours(idx), rtol=0, atol=1e-10)
    with with_module.evaluating():
        fast_path = with_module(idx)
    exact = ts.EncoderStackGPT.from_gpt(ours, activation=nn.GELU())
    torch.testing.assert_close(fast_path, exact(idx), rtol=0, atol=1e-10)
    assert (fast_path - training_path).abs().max() > 1e-8  # 100x the tolerance of the equalities


def test_rereading_generates_what_the_cache_generates_by_re_reading():
    ours = small_gpt()
    rereading = ts.Rereading(ours)
    state, _ = rereading.start([[2]] * 3)
    assert state == [[2]] * 3  # a list of contexts: nothing carried but the tokens
    cached, reread = ts.generate_tokens(ours, 3, 7, seed=5), ts.generate_tokens(rereading, 3, 7, seed=5)
    assert cached.shape == (3, 7)
    np.testing.assert_array_equal(cached, reread)
    np.testing.assert_array_equal(ts.generate_tokens(ts.EncoderStackGPT.from_gpt(ours), 3, 7, seed=5), cached)


def test_a_tiny_run_reports_finite_speeds_for_every_contender():
    rows = ts.run(ts.QUICK)
    kinds = [r["benchmark"].split(" ")[0].rstrip(",") for r in rows]
    assert kinds == ["training", "inference", "generation", "generation"]
    for r in rows:
        assert r["threads"] == 1
        for key in ("explicit", "sdpa", "sdpa/pytorch"):
            assert math.isfinite(r[key]) and r[key] > 0, (r["benchmark"], key)
        assert r["range"][0] <= r["sdpa/pytorch"] <= r["range"][1]
        cached = "key/value cache" in r["benchmark"]
        assert math.isnan(r["pytorch"]) if cached else r["pytorch"] > 0
    assert "parameters" in rows[0]["benchmark"] and "load" in rows[0]["note"]
    table = ts.markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "| n/a |" in table
    assert torch.get_num_threads() == 1  # restored (the test session runs on one thread)
