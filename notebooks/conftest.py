"""Notebooks run under pytest (nbmake) in the fast mode: same code, smaller settings."""

import os

from simplellm import FAST_ENV

# Set before any kernel starts, so every notebook kernel inherits it.
os.environ.setdefault(FAST_ENV, "1")
