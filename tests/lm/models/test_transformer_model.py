"""The GPT: its documented weight layout, explicit attention = SDPA, and key/value-cached generation =
re-reading generation, within and beyond the context window."""

import math

import numpy as np
import pytest
import torch

from simplellm.lm.models import build_model
from simplellm.lm.models.transformer import KVCacheState, sinusoidal_positions
from simplellm.lm.sampling import beam_search, sample
from simplellm.lm.tokenizers import BOS

SMALL = {"vocab_size": 10, "block_size": 8, "n_layer": 2, "n_head": 2, "n_embd": 16}


def small(**options):
    torch.manual_seed(0)
    model = build_model("transformer", **{**SMALL, **options}).double()
    with torch.no_grad():  # GPT-2's init leaves biases and LayerNorms trivial: make every weight count
        for name, p in model.named_parameters():
            if "ln" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def reference_logits(model, seq):
    """The forward pass written from the state_dict and the layout contract alone, one head and one
    position at a time, as the NumPy transformer will."""
    cfg, sd = model.config, model.state_dict()
    C, H = cfg.n_embd, cfg.n_head
    D, T = C // H, len(seq)

    def linear(x, name):
        return x @ sd[f"{name}.weight"].T + sd.get(f"{name}.bias", 0.0)

    def layer_norm(x, name):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * sd[f"{name}.weight"] + sd.get(f"{name}.bias", 0.0)

    if cfg.positions == "learned":
        pos = sd["pos_emb.weight"][:T]
    else:
        pos = torch.tensor(
            [
                [(math.sin if i % 2 == 0 else math.cos)(p / 10000 ** ((i - i % 2) / C)) for i in range(C)]
                for p in range(T)
            ],
            dtype=torch.float64,
        )
    x = sd["tok_emb.weight"][seq] + pos
    for layer in range(cfg.n_layer):
        b = f"blocks.{layer}"
        qkv = linear(layer_norm(x, f"{b}.ln1"), f"{b}.attn.qkv")
        q, k, v = qkv[:, :C], qkv[:, C : 2 * C], qkv[:, 2 * C :]
        out = torch.zeros(T, C, dtype=torch.float64)
        for h in range(H):
            s = slice(h * D, (h + 1) * D)
            for t in range(T):
                weights = torch.softmax(k[: t + 1, s] @ q[t, s] / math.sqrt(D), dim=0)
                out[t, s] = weights @ v[: t + 1, s]
        x = x + linear(out, f"{b}.attn.proj")
        u = linear(layer_norm(x, f"{b}.ln2"), f"{b}.mlp.fc")
        gelu = 0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))
        x = x + linear(gelu, f"{b}.mlp.proj")
    return layer_norm(x, "ln_f") @ sd["head.weight"].T


@pytest.mark.parametrize(
    "options",
    [{}, {"positions": "sinusoidal"}, {"tie_weights": True}, {"bias": False}, {"attention": "sdpa"}],
    ids=["default", "sinusoidal", "tied", "no-bias", "sdpa"],
)
def test_the_forward_pass_follows_the_documented_layout(options):
    model = small(**options)
    model.eval()
    seqs = [[BOS, 4, 5, 6, 7, 8, 9, 4], [BOS, 9, 8, 3, 0, 0, 0, 0]]
    logits = model(torch.tensor(seqs))
    for row, seq in enumerate(seqs):
        torch.testing.assert_close(logits[row], reference_logits(model, seq), rtol=0, atol=1e-12)


def test_weight_tying_and_bias_options_change_the_parameters_as_documented():
    untied, tied, no_bias = small(), small(tie_weights=True), small(bias=False)
    assert tied.head.weight is tied.tok_emb.weight
    assert untied.num_parameters() - tied.num_parameters() == 10 * 16
    assert not any(name.endswith("bias") for name, _ in no_bias.named_parameters())
    assert "pos_emb" not in dict(small(positions="sinusoidal").state_dict())  # a function, not a weight


def test_gpt2_initialisation_scales_the_residual_projections_by_depth():
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=66, n_layer=8, n_embd=128)
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    for proj in (model.blocks[3].attn.proj, model.blocks[3].mlp.proj):
        assert proj.weight.std().item() == pytest.approx(0.02 / math.sqrt(16), rel=0.05)
    assert (model.blocks[0].attn.qkv.bias == 0).all()


def test_sinusoidal_positions_are_the_formula_and_stay_exact_in_float64():
    table = sinusoidal_positions(50, 6)
    assert table[0].tolist() == [0, 1, 0, 1, 0, 1]
    assert table[7, 0].item() == math.sin(7) and table[7, 1].item() == math.cos(7)
    assert table[7, 4].item() == pytest.approx(math.sin(7 / 10000 ** (4 / 6)), rel=1e-15)
    assert sinusoidal_positions(3, 5).shape == (3, 5)  # odd widths end on a sine
    model = build_model("transformer", **SMALL, positions="sinusoidal")
    assert model.pos_emb.dtype == torch.float32
    model.double()  # recomputed, not the float32 table cast up
    torch.testing.assert_close(model.pos_emb, sinusoidal_positions(8, 16), rtol=0, atol=0)


def test_sdpa_equals_explicit_attention_outputs_and_gradients():
    explicit, fused = small(), small(attention="sdpa")
    fused.load_state_dict(explicit.state_dict())
    idx = torch.randint(0, 10, (4, 8), generator=torch.Generator().manual_seed(0))
    for model in (explicit, fused):
        model.eval()  # dropout (0 here anyway) would draw different masks
        model.loss(idx).backward()
    torch.testing.assert_close(fused(idx), explicit(idx), rtol=0, atol=1e-12)
    grads = dict(explicit.named_parameters())
    for name, p in fused.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=0, atol=1e-12)
    assert explicit.blocks[0].attn.qkv.weight.grad.abs().max() > 1e-3


def test_no_position_sees_the_future():
    model = small()
    idx = torch.randint(0, 10, (1, 8), generator=torch.Generator().manual_seed(0))
    later = idx.clone()
    later[0, 5:] = (later[0, 5:] + 1) % 10
    diff = (model(idx) - model(later)).abs().amax(dim=-1)[0]
    assert (diff[:5] == 0).all() and (diff[5:] > 1e-6).all()


def test_attention_maps_are_causal_distributions_matching_the_reference():
    model = small()
    model.train()
    idx = torch.tensor([[BOS, 4, 5, 6, 7, 8]])
    maps = model.attention_maps(idx)
    assert model.training and len(maps) == 2 and maps[0].shape == (1, 2, 6, 6)
    for att in maps:
        torch.testing.assert_close(att.sum(-1), torch.ones(1, 2, 6, dtype=torch.float64), rtol=0, atol=1e-12)
        below = torch.ones(6, 6, dtype=torch.bool).tril()
        assert (att[..., ~below] == 0).all() and (att[..., below] > 0).all()
    # layer 0 from first principles: softmax(q . k / sqrt(D)) over earlier positions
    attn = model.blocks[0].attn
    x = model.blocks[0].ln1(model.tok_emb(idx) + model.pos_emb.weight[:6])
    q, k, _ = attn.qkv(x).split(16, dim=2)
    q1, k1 = q[0, :, 8:], k[0, :, 8:]  # head 1
    scores = (q1 @ k1.T / math.sqrt(8)).masked_fill(torch.ones(6, 6).triu(1).bool(), -math.inf)
    torch.testing.assert_close(maps[0][0, 1], scores.softmax(-1), rtol=0, atol=1e-12)


def test_dropout_is_random_in_training_and_off_for_scoring():
    for attention in ("explicit", "sdpa"):
        model = small(dropout=0.3, attention=attention)
        model.train()
        idx = torch.tensor([[BOS, 4, 5, 6]])
        assert not torch.equal(model(idx), model(idx))
        first = model.next_token_logprobs([[BOS, 4]])
        np.testing.assert_array_equal(model.next_token_logprobs([[BOS, 4]]), first)
        assert model.training


@pytest.mark.parametrize("attention", ["explicit", "sdpa"])
@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_cached_distributions_equal_the_full_forward_within_and_beyond_the_window(attention, positions):
    model = small(attention=attention, positions=positions)
    rng = np.random.default_rng(0)
    contexts = [[BOS, 4], [BOS, 5]]
    state, logp = model.start(contexts)
    assert isinstance(state, KVCacheState) and state.cache[0][0].shape == (2, 2, 2, 8)
    np.testing.assert_allclose(logp, model.next_token_logprobs(contexts), rtol=0, atol=1e-10)
    for _ in range(14):  # block_size is 8: the last steps crop to the last 8 tokens
        rows = rng.integers(0, len(contexts), size=3)  # repeat and reorder, as beam search does
        tokens = rng.integers(3, 10, size=3)
        state = model.select(state, rows)
        contexts = [contexts[r] + [int(t)] for r, t in zip(rows, tokens, strict=True)]
        state, logp = model.advance(state, tokens)
        np.testing.assert_allclose(logp, model.next_token_logprobs(contexts), rtol=0, atol=1e-10)
        cached = state.cache is not None
        assert cached == (len(contexts[0]) <= 8)
        if cached:
            assert state.cache[1][1].shape == (3, 2, len(contexts[0]), 8)


@pytest.mark.parametrize("attention", ["explicit", "sdpa"])
def test_cached_generation_equals_re_reading_generation_within_and_beyond_the_window(attention, rereading):
    model = small(attention=attention)
    slow = rereading(model)
    reads = []
    forward = model.forward
    model.forward = lambda idx: reads.append(idx.shape) or forward(idx)
    for max_new in (6, 20):  # inside block_size 8, and well past it
        for options in [{"seed": 1}, {"seed": 2, "top_p": 0.8}, {"greedy": True}]:
            reads.clear()
            out = sample(model, 12, max_new_tokens=max_new, batch_size=5, **options)
            full_forwards = len(reads)
            assert out == sample(slow, 12, max_new_tokens=max_new, batch_size=5, **options)
            assert (full_forwards == 0) == (max_new < 8)  # the cache did the work inside the window
        ours = beam_search(model, beam_width=3, max_new_tokens=max_new)
        theirs = beam_search(slow, beam_width=3, max_new_tokens=max_new)
        assert [b.tokens for b in ours] == [b.tokens for b in theirs]
        np.testing.assert_allclose([b.logprob for b in ours], [b.logprob for b in theirs], rtol=1e-12)
    long_prompt = [BOS] + [4, 5, 6] * 5  # longer than the window from the start
    assert sample(model, 4, prompt=long_prompt, max_new_tokens=5) == sample(
        slow, 4, prompt=long_prompt, max_new_tokens=5
    )


def test_prompts_of_different_lengths_fall_back_to_re_reading():
    model = small()
    contexts = [[BOS, 4], [BOS, 5, 6, 7]]
    state, logp = model.start(contexts)
    np.testing.assert_allclose(logp, model.next_token_logprobs(contexts), rtol=0, atol=1e-12)
    state, logp = model.advance(model.select(state, np.array([1])), np.array([8]))
    np.testing.assert_allclose(logp, model.next_token_logprobs([[BOS, 5, 6, 7, 8]]), rtol=0, atol=1e-12)


def test_bad_configs_raise():
    for options, word in [
        ({"n_embd": 10, "n_head": 3}, "divisible"),
        ({"positions": "rotary"}, "positions"),
        ({"attention": "flash"}, "attention"),
    ]:
        with pytest.raises(ValueError, match=word):
            build_model("transformer", vocab_size=10, **options)
    with pytest.raises(ValueError, match="context window"):
        small().loss(torch.zeros(1, 10, dtype=torch.long))
