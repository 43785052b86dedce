"""simplellm: build a language model from nothing, one milestone at a time.

Tiers (imports only go down): ``autograd`` and ``data`` import nothing of the project,
``nn`` may import ``autograd``, ``lm`` may import all three.
"""

__version__ = "0.1.0"

MILESTONES = ("autograd", "nn", "lm")
