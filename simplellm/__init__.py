"""simplellm: build a language model from nothing, one milestone at a time.

Tiers (imports only go down): ``autograd`` and ``data`` import nothing of the project,
``nn`` may import ``autograd``, ``lm`` may import all three.
"""

import os

__version__ = "0.1.0"

MILESTONES = ("autograd", "nn", "lm")

FAST_ENV = "SIMPLELLM_FAST"


def fast_mode() -> bool:
    """True when the environment variable SIMPLELLM_FAST is set to anything but "" or "0".

    Notebooks and demonstrations then choose smaller settings (fewer steps, fewer samples) so that
    the test suite can execute every notebook quickly; the code that runs is the same.
    """
    return os.environ.get(FAST_ENV, "") not in ("", "0")
