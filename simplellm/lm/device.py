"""Where training runs: which device, which precision, and how many processes share the work.

Three questions, answered once here so the trainer can read top to bottom:

* ``pick_device("auto")`` prefers CUDA, then Apple's MPS, then the CPU.
* ``autocast_dtype`` says whether to run the forward pass in bfloat16. On CUDA, bf16 autocast roughly
  halves memory traffic and keeps float32's exponent range, so no loss scaling is needed (float16 would
  need a GradScaler). Weights, optimizer state and the loss stay float32.
* ``Distributed`` describes the process group that ``torchrun`` sets up: rank, world size, and the local
  rank that picks this process's GPU. Without ``torchrun`` it is a group of one and every collective is
  a no-op, so the same code trains on one process or many.

The CUDA and MPS branches cannot run on a CPU-only machine; their tests run wherever a GPU exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16")


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The device called ``name``; ``auto`` is CUDA, then MPS, then CPU. CUDA uses GPU ``local_rank``."""
    if name not in DEVICES and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)} (or cuda:N)")
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for, but torch sees no CUDA GPU; use --device cpu")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps was asked for, but MPS is not available; use --device cpu")
    return torch.device(name)


def autocast_dtype(dtype: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``dtype`` on ``device``, or None to run in plain float32.

    ``auto`` is bfloat16 on a CUDA GPU that supports it and float32 elsewhere: on the CPU, bf16 autocast
    is slower than float32 for models this small, and MPS autocast is still incomplete.
    """
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    if dtype == "bfloat16":
        if device.type == "mps":
            raise ValueError("bfloat16 autocast is not supported on MPS here; use --dtype float32")
        return torch.bfloat16
    return None


@dataclass(frozen=True)
class Distributed:
    """This process's place in the process group (a group of one without ``torchrun``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files and prints, so N processes do not write N copies."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def all_reduce_sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sums over all ranks (float64, so averages of many ranks lose nothing)."""
        if not self.enabled:
            return list(values)
        # gloo reduces CPU tensors, nccl CUDA tensors: the tensor lives where the backend wants it
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def all_gather(self, obj: object) -> list[object]:
        """``obj`` from every rank, in rank order (for per-rank RNG states in checkpoints)."""
        if not self.enabled:
            return [obj]
        out: list[object] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def current_distributed() -> Distributed:
    """The process group already initialised in this process, or a group of one."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return Distributed(dist.get_rank(), dist.get_world_size(), local)
    return Distributed()


def launched_by_torchrun() -> bool:
    """``torchrun`` (``python -m torch.distributed.run``) exports these for every process it starts."""
    return all(
        key in os.environ for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    )


def init_distributed(device_name: str = "auto") -> Distributed:
    """Join the process group that ``torchrun`` prepared: nccl between GPUs, gloo between CPU processes.

    Returns a group of one when not launched by ``torchrun`` (or launched with a single process).
    """
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return current_distributed()
    if not dist.is_initialized():
        local_rank = int(os.environ["LOCAL_RANK"])
        device = pick_device(device_name, local_rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=10))
    return current_distributed()


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
