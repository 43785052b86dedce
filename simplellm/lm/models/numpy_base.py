"""What the NumPy language models share: parameters as arrays, hand-written gradients, torch-tensor weights.

A NumPy model keeps ``params`` and ``grads``, two dicts of arrays with the same names (the convention
of ``simplellm.nn.numpy_layers``), and answers two questions the training loop asks:

* ``training_batches(data, batch_size, seed)`` -- what one step trains on, drawn from the data;
* ``loss_and_backward(batch)`` -- the mean loss of a batch, with its gradient *added* into ``grads``.

Everything a language model answers (next-token log-probabilities, cross-entropy, generation through the
shared sampler) comes from :class:`LanguageModel`. ``state_dict`` returns torch tensors, so the
checkpoint format of the torch models (``torch.load(weights_only=True)``) holds these models too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from simplellm.lm.models.base import LanguageModel

Batch = Any  # whatever a model trains on in one step (a padded token array, or contexts and targets)


class NumpyLanguageModel(LanguageModel):
    """A language model whose parameters are NumPy arrays and whose backward pass is written by hand."""

    #: the optimizer and learning-rate schedule its training uses unless told otherwise
    #: (see ``simplellm.lm.numpy_train``): "sgd" or "adam"; "step" or "cosine"
    default_optimizer: ClassVar[str] = "adam"
    default_schedule: ClassVar[str] = "cosine"
    #: ``TrainConfig`` values that suit this model where the torch trainer's defaults do not
    train_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: Any) -> None:
        self.config = config
        self.vocab_size = config.vocab_size
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0)

    def num_parameters(self) -> int:
        return sum(p.size for p in self.params.values())

    def decays(self, name: str) -> bool:
        """Whether weight decay applies: to matrices and embeddings, not to biases and norm gains."""
        return self.params[name].ndim >= 2

    # ----------------------------------------------------------------- training hooks
    def training_batches(self, data: Any, batch_size: int, seed: int) -> Iterator[Batch]:
        raise NotImplementedError

    def loss_and_backward(self, batch: Batch) -> tuple[float, int]:
        """(mean loss, number of predicted tokens) of ``batch``; the gradient is added into ``grads``."""
        raise NotImplementedError

    def fit(
        self, sequences: Sequence[Sequence[int]], validation: Sequence[Sequence[int]] = (), **options: Any
    ) -> Any:
        """Train on framed token sequences; ``options`` are ``TrainConfig`` fields (steps, batch_size, lr,
        seed, ...). Returns the ``History``. See :func:`simplellm.lm.numpy_train.train_numpy`."""
        from simplellm.lm.numpy_train import fit_sequences  # the trainer imports the models: import late

        return fit_sequences(self, sequences, validation, **options)

    # ----------------------------------------------------------------- weights as torch tensors
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(p.copy()) for name, p in self.params.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy weights into the parameters in place (optimizers hold the same arrays), checking names
        and shapes first, so a bad checkpoint changes nothing."""
        missing, unexpected = sorted(set(self.params) - set(state)), sorted(set(state) - set(self.params))
        if missing or unexpected:
            raise ValueError(f"{self.family} weights do not fit: missing {missing}, unexpected {unexpected}")
        values = {name: _as_numpy(value) for name, value in state.items()}
        for name, value in values.items():
            if value.shape != self.params[name].shape:
                raise ValueError(
                    f"{self.family} weight {name}: expected {self.params[name].shape}, "
                    f"got {tuple(value.shape)}"
                )
        for name, value in values.items():
            self.params[name][...] = value

    def copy_params(self) -> dict[str, np.ndarray]:
        return {name: p.copy() for name, p in self.params.items()}

    def set_params(self, values: Mapping[str, np.ndarray]) -> None:
        for name, value in values.items():
            self.params[name][...] = value


def _as_numpy(value: Any) -> np.ndarray:
    if torch.is_tensor(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)
