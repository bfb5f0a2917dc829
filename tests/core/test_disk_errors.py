"""A full or read-only disk: one line naming the path and the cause, exit code 2, nothing left half-written.

Tests run as root, which permission bits do not stop, and no small file system is at hand: the
errors are injected where the files are synced (or where safetensors writes), as the kernel would
raise them there.
"""

import errno
import hashlib
import os
from pathlib import Path

import pytest

from bad_input import assert_refused

from zerotune.cli.main import main
from zerotune.errors import disk_error

IRIS = ["--set", "data.name=iris", "--set", "model.name=mlp", "--set", "model.hidden=[8]",
        "--set", "train.threads=1", "--no-progress"]

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds a descriptor's file in /proc")



@pytest.fixture
def full_disk(monkeypatch):
    """``full_disk("config.yaml")``: syncing a file whose path holds that text fails with ENOSPC (or `code`)."""

    def arm(needle: str, code: int = errno.ENOSPC):
        real = os.fsync

        def fsync(fd):
            if needle in os.readlink(f"/proc/self/fd/{fd}"):
                raise OSError(code, os.strerror(code))  # as write() and fsync() raise it: no file name
            return real(fd)

        monkeypatch.setattr(os, "fsync", fsync)

    return arm


def one_line(capsys, code: int, *needles: str) -> str:
    return assert_refused(code, *capsys.readouterr(), *needles)


def tree_hash(path: Path) -> dict:
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(path.rglob("*"))}


def test_a_run_started_on_a_full_disk_leaves_no_directory(tmp_path, full_disk, monkeypatch, capsys):
    runs = tmp_path / "new" / "runs"
    full_disk("config.yaml")
    code = main(["train", "--runs-dir", str(runs), "--name", "x", *IRIS])
    one_line(capsys, code, f"cannot write {runs / 'x' / 'config.yaml'}: no space left on the device")
    assert not (tmp_path / "new").exists()  # the folders --runs-dir made went with it
    (tmp_path / "kept").mkdir()
    code = main(["train", "--runs-dir", str(tmp_path / "kept"), "--name", "x", *IRIS])
    one_line(capsys, code, "no space left")
    assert list((tmp_path / "kept").iterdir()) == []  # only what the command created is removed
    monkeypatch.undo()
    assert main(["train", "--runs-dir", str(runs), "--name", "x", "--set", "train.epochs=1", *IRIS]) == 0


def test_a_full_disk_at_a_checkpoint_names_it(tmp_path, monkeypatch, capsys):
    from safetensors import SafetensorError

    from zerotune.train import checkpoint as ckpt

    def no_space(tensors, filename, metadata=None):  # what safetensors raises on ENOSPC
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28) "
                              f'at path "{filename}"')

    monkeypatch.setattr(ckpt, "save_file", no_space)
    code = main(["train", "--runs-dir", str(tmp_path), "--name", "x", *IRIS, "--set", "log.tensorboard=false"])
    line = one_line(capsys, code, f"cannot write {tmp_path / 'x' / 'checkpoints'}", "no space left on the device")
    # the first save (best and last together) names the checkpoints folder; a later one its checkpoint
    assert line.endswith(tuple(f"checkpoints{n}: no space left on the device" for n in ("", "/best", "/last")))
    checkpoints = tmp_path / "x" / "checkpoints"  # no temporary directory left behind
    assert not list(checkpoints.parent.glob(".checkpoints.tmp-*"))
    assert not checkpoints.exists() or not any(checkpoints.iterdir())


def test_a_read_only_disk_on_resume_changes_nothing(run, full_disk, capsys):
    before = tree_hash(run)
    full_disk("config.yaml", errno.EROFS)
    code = main(["train", "--resume", str(run), "--set", "train.epochs=4"])
    one_line(capsys, code, f"cannot write {run / 'config.yaml'}: the file system is read-only")
    assert tree_hash(run) == before


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_report_on_a_full_disk_leaves_no_file(run, full_disk, capsys, fmt):
    before = tree_hash(run)
    full_disk(f"report.{fmt}")
    code = main(["report", str(run), "--format", fmt])
    one_line(capsys, code, f"cannot write {run / f'report.{fmt}'}: no space left on the device")
    assert tree_hash(run) == before  # no empty report, no images folder


def test_export_on_a_full_disk_leaves_no_file(run, full_disk, capsys):
    pytest.importorskip("onnx")
    before = tree_hash(run)
    full_disk(".onnx")
    code = main(["export", str(run)])
    one_line(capsys, code, f"cannot write {run / 'export'}", ".onnx: no space left on the device")
    assert tree_hash(run) == before


def test_disk_errors_are_user_errors_and_others_stay_bugs():
    assert str(disk_error(OSError(errno.EACCES, "Permission denied", "/x/y"))) == "cannot access /x/y: permission denied"
    assert str(disk_error(OSError(errno.EDQUOT, "Disk quota exceeded", "/q"))) == "cannot write /q: disk quota exceeded"
    assert disk_error(OSError(errno.ENOENT, "No such file or directory", "/x")) is None
    assert disk_error(OSError(errno.EIO, "Input/output error")) is None


def test_another_os_error_is_still_an_internal_error(monkeypatch, capsys, tmp_path):
    import zerotune.pipeline.train as api

    def broken(*a, **k):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(api, "write_run_files", broken)
    assert main(["train", "--runs-dir", str(tmp_path), "--name", "x", *IRIS]) == 1
    assert "internal error OSError" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_full_disk_under_the_event_file_stops_the_events_not_the_run(tmp_path, monkeypatch, capsys):
    """TensorBoard's events are a view: one warning naming the file, then training ends as it would."""
    from zerotune.track.event_file import EventFile

    def no_space(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(EventFile, "flush", no_space)
    assert main(["train", "--runs-dir", str(tmp_path), "--name", "x", "--set", "log.flush_secs=0.01", *IRIS]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "TensorBoard events stopped" in line]
    (event_file,) = (tmp_path / "x").glob("events.out.tfevents.*")
    assert warnings == [f"warning: TensorBoard events stopped: cannot write {event_file}: no space left on the device"]
    assert (tmp_path / "x" / "metrics.json").is_file()
