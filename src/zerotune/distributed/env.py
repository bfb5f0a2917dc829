"""This process's place in a torchrun job: rank and world size from torchrun's variables, the process group.

torchrun (and ``zerotune train --nproc N``, which starts the same elastic agent) sets RANK, WORLD_SIZE,
LOCAL_RANK and MASTER_ADDR/PORT in each worker's environment; without them a run is one process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import UserError
from .launch import in_worker

_current: DistContext | None = None


@dataclass
class DistContext:
    """The job as this process sees it, and the few collectives the training loop needs."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device
    comm_seconds: float = 0.0  # time spent in collectives since the last `take_comm_seconds`
    restart: int = 0  # the elastic agent's restart count (0: first attempt)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run directory."""
        return self.rank == 0

    def timed(self, fn: Callable[[], Any]) -> Any:
        """Run a collective and add its time (waiting for the slowest rank included) to `comm_seconds`."""
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.comm_seconds += time.perf_counter() - t0

    def take_comm_seconds(self) -> float:
        """Collective time since the previous call."""
        seconds, self.comm_seconds = self.comm_seconds, 0.0
        return seconds

    def barrier(self) -> None:
        self.timed(dist.barrier)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (a small picklable object)."""
        box = [value]
        self.timed(lambda: dist.broadcast_object_list(box, src=0))
        return box[0]

    def all_gather_floats(self, values: list[float]) -> torch.Tensor:
        """(world_size, len(values)): every rank's `values`, in rank order."""
        mine = torch.tensor(values, dtype=torch.float64, device=self.device)
        out = [torch.empty_like(mine) for _ in range(self.world_size)]
        self.timed(lambda: dist.all_gather(out, mine))
        return torch.stack(out).cpu()

    def mean(self, total: torch.Tensor, count: int) -> float:
        """Sum of `total` over ranks divided by the sum of `count` (e.g. an epoch's mean loss)."""
        both = torch.stack([total.detach().double(), torch.tensor(float(count), dtype=torch.float64,
                                                                  device=total.device)]).to(self.device)
        self.timed(lambda: dist.all_reduce(both))
        return float(both[0]) / max(float(both[1]), 1.0)

    def any(self, flag: bool) -> bool:
        """Whether `flag` is true on any rank, so that every rank makes the same decision."""
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        self.timed(lambda: dist.all_reduce(t, op=dist.ReduceOp.MAX))
        return bool(t.item())

    def on_main(self, fn: Callable[[], Any]) -> Any:
        """`fn()` on rank 0, its result broadcast to every rank; if it raises there, the others stop quietly."""
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except BaseException as e:  # re-raised below, after the others learnt that it failed
                error = e
        ok = self.broadcast(error is None)
        if error is not None:
            raise error
        if not ok:
            raise SystemExit(2)  # rank 0 has said why, in one line
        return self.broadcast(result)


def current() -> DistContext | None:
    """The context of this process's job, once `init` has run; None in a single-process run."""
    return _current


def init(tc) -> DistContext | None:
    """Join the job torchrun started (None when there is none): device and backend chosen, process group made.

    Args:
        tc: the TrainConfig (``device``, ``distributed.backend``, ``distributed.strategy``).
    """
    global _current
    if not in_worker():
        return None
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    device = _device(tc.device, local)
    backend = resolve_backend(tc.distributed.backend, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend, store=_attempt_store(world), rank=rank, world_size=world,
                                device_id=device if device.type == "cuda" else None)
    _current = DistContext(rank, world, local, backend, device,
                           restart=int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)))
    return _current


def _attempt_store(world: int):
    """The store of torchrun's agent, under a prefix of its own for each attempt of the job.

    The workers of every attempt share the agent's store (torch's default), so after a restart a
    rank could read a dead rank's address left there by the failed attempt and fail to connect.
    None when the job has no agent store: then init_process_group reads MASTER_ADDR/PORT itself.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False)
    return dist.PrefixStore(f"zerotune/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def shutdown() -> None:
    """Leave the job: the process group is destroyed and `current()` is None again."""
    global _current
    if dist.is_initialized():
        dist.destroy_process_group()
    _current = None


def check_launchable(config) -> None:
    """What a job would refuse in every worker, refused once before any starts: backend, fp16 on CPU, threads."""
    from ..compute.threads import check_threads
    from ..train.env import resolve_device

    tc = config.train
    check_threads(tc.threads, "train.threads")
    check_strategy(tc, config.optim)
    device = resolve_device(tc.device)
    if tc.precision == "fp16" and device.type != "cuda":
        raise UserError("train.precision 'fp16' needs a CUDA device; use 'bf16' or '32' on cpu")
    resolve_backend(tc.distributed.backend, device)


def check_strategy(tc, oc) -> None:
    """Refuse what sharded training does not run: L1/L2 penalties (sums over sharded weights)."""
    if tc.distributed.strategy == "fsdp" and (oc.l1 or oc.l2):
        raise UserError("optim.l1 and optim.l2 are not supported with train.distributed.strategy 'fsdp'; "
                        "use optim.weight_decay")


def check_resume(checkpoint_dir, strategy: str) -> None:
    """Refuse to continue a checkpoint in a way that would drop its optimizer state.

    FSDP writes the optimizer state as shards (``dcp/``), which only sharded training reads back,
    with any number of ranks; the other runs write it whole, which FSDP does not read.
    """
    from pathlib import Path

    from ..run.files import DCP_DIR

    sharded = (Path(checkpoint_dir) / DCP_DIR).is_dir()
    fsdp = strategy == "fsdp" and _current is not None
    if sharded and not fsdp:
        raise UserError(f"checkpoint {checkpoint_dir} was saved by sharded training (train.distributed.strategy "
                        f"'fsdp'): resume it with --nproc N (any N, 1 included) or torchrun")
    if fsdp and not sharded:
        raise UserError(f"checkpoint {checkpoint_dir} was not saved by sharded training: resume it with "
                        f"train.distributed.strategy = 'ddp' or in one process")


def resolve_backend(name: str, device: torch.device) -> str:
    """gloo on CPU, nccl on CUDA; an explicit nccl needs CUDA."""
    if name == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if name == "nccl" and device.type != "cuda":
        raise UserError("train.distributed.backend 'nccl' needs CUDA devices; use 'gloo' or 'auto' on cpu")
    return name


def _device(name: str, local_rank: int) -> torch.device:
    """Each rank's own GPU (cuda:LOCAL_RANK) when CUDA is used, else the CPU."""
    from ..train.env import resolve_device

    device = resolve_device(name)
    if device.type != "cuda":
        return device
    if local_rank >= torch.cuda.device_count():
        raise UserError(f"local rank {local_rank} has no GPU: only {torch.cuda.device_count()} CUDA device(s) "
                        f"here; start at most that many processes per machine")
    return torch.device("cuda", local_rank)
