"""The MLP milestone and the manual-backprop NumPy layers.

The same network, trained three ways; nothing changes but the machinery:

* ``simplellm.nn.stage1_value``: ``Module``, ``Neuron``, ``Layer``, ``MLP``, ``SGD``, ``Adam`` on ``Value``;
* ``simplellm.nn.stage2_tensor``: the same on raw PyTorch tensors with our own tensor-op optimizers;
* ``simplellm.nn.stage3_torch``: the same with ``torch.nn`` and ``torch.optim``.

The stages define the same names, so import the one you want by module:
``from simplellm.nn import stage1_value as stage``. ``python -m simplellm.nn.test`` trains all three.

Beside them, the layers a language model needs, with hand-written backward passes in NumPy:
``simplellm.nn.numpy_layers`` (``Linear``, ``Embedding``, ``LayerNorm``, ``Tanh``, ``ReLU``, ``GELU``,
``SoftmaxCrossEntropy``, ``CausalSelfAttention``, ``Sequential``) and ``simplellm.nn.numpy_optim``
(``SGD``, ``Adam``).
"""

from simplellm.nn.datasets import Quadratic, make_moons, make_quadratic, train_test_split

__all__ = ["Quadratic", "make_moons", "make_quadratic", "train_test_split"]
