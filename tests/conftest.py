"""Shared test settings: one torch thread, deterministic hypothesis runs."""

import os

import hypothesis

# Two shared cores: torch with 2 threads can be many times slower than with 1.
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # the pure-Python tiers are testable without torch
    pass

# Same examples on every run, so a failure in CI reproduces locally.
hypothesis.settings.register_profile("simplellm", derandomize=True, deadline=None, max_examples=100)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "simplellm"))
