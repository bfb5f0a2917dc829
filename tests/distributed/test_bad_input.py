"""Bad input to a distributed run: one line, exit code 2, nothing started and nothing written."""

import pytest

from zerotune.cli.main import main
from zerotune.distributed.launch import WorkerFailed, failure_error, root_failure
from zerotune.errors import UserError


@pytest.mark.parametrize("args, message", [
    (["--nproc", "0"], "error: --nproc 0: the number of worker processes must be at least 1"),
    (["--nproc", "2", "--set", "train.distributed.strategy=zero"],
     "error: config: train.distributed.strategy: Input should be 'ddp' or 'fsdp' (got 'zero')"),
    (["--nproc", "2", "--set", "train.distributed.strategy=fsdp", "--set", "optim.l2=0.001"],
     "error: optim.l1 and optim.l2 are not supported with train.distributed.strategy 'fsdp'; use optim.weight_decay"),
    (["--nproc", "2", "--set", "train.precision=fp16"],
     "error: train.precision 'fp16' needs a CUDA device; use 'bf16' or '32' on cpu"),
    (["--nproc", "2", "--set", "train.distributed.backend=nccl", "--set", "train.device=cpu"],
     "error: train.distributed.backend 'nccl' needs CUDA devices; use 'gloo' or 'auto' on cpu"),
    (["--nproc", "2", "--max-restarts", "-1"], "error: --max-restarts -1: must be 0 or more"),
    (["--max-restarts", "2"], "error: --max-restarts applies with --nproc N (under torchrun, give it to torchrun)"),
])
def test_refused_before_any_worker_starts(args, message, runs_dir, capsys):
    assert main(["train", "--runs-dir", str(runs_dir), *args]) == 2
    err = capsys.readouterr().err
    assert err.strip() == message
    assert not runs_dir.exists()


def test_more_ranks_than_batches_is_one_line_from_the_workers(runs_dir, capfd):
    # iris: 105 training rows in batches of 60 make 2 batches, too few for 3 ranks
    code = main(["train", "--nproc", "3", "--runs-dir", str(runs_dir), "--no-progress", "--set", "data.name=iris",
                 "--set", "model.name=mlp", "--set", "train.batch_size=60"])
    err = capfd.readouterr().err
    assert code == 2
    assert err.strip() == ("error: 3 ranks but only 2 training batch(es) per epoch; use at most 2 processes "
                           "or a smaller train.batch_size")
    assert not runs_dir.exists()


def test_the_killed_rank_is_named_not_the_ranks_that_lost_it():
    from types import SimpleNamespace

    def failure(exitcode, timestamp, signal=None):
        return SimpleNamespace(exitcode=exitcode, timestamp=timestamp, signal_name=lambda: signal)

    lost, killed, stopped = failure(1, 100), failure(-9, 101, "SIGKILL"), failure(-15, 99, "SIGTERM")
    assert root_failure({0: lost, 1: killed, 2: stopped}) == (1, killed)
    bad = failure(2, 102)
    assert root_failure({0: lost, 3: bad, 2: stopped}) == (3, bad)
    assert root_failure({0: stopped, 1: lost}) == (1, lost)


def test_a_failed_worker_is_one_line_naming_its_rank():
    assert str(failure_error(1, -9, 42, "", "SIGKILL")).startswith("rank 1 (pid 42) was killed by SIGKILL")
    assert isinstance(failure_error(0, 2, 42, "train.batch_size 30 ...", None), UserError)
    other = failure_error(3, 1, 42, "To enable traceback see: https://...", None)
    assert isinstance(other, WorkerFailed) and str(other) == ("rank 3 (pid 42) failed with exit code 1; "
                                                              "the other ranks were stopped")
