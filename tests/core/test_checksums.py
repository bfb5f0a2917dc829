"""Checkpoint checksums: written with every checkpoint, checked wherever weights are read."""

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from bad_input import assert_refused

from zerotune.cli.main import main
from zerotune.errors import UserError
from zerotune.run.checksums import Damaged, checked_while, file_checksum, verify_checksums, write_checksums


def zt(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_line_error(code: int, err: str, *needles: str) -> str:
    return assert_refused(code, "", err, *needles)


def garble(file: Path, offset: int = 4096, n: int = 64) -> None:
    """Overwrite `n` bytes in place with random ones: the size stays, only a checksum can tell."""
    data = bytearray(file.read_bytes())
    offset = min(offset, len(data) - n)
    data[offset:offset + n] = os.urandom(n)
    file.write_bytes(bytes(data))


def tree_hash(path: Path) -> dict:
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


# -- the manifest ------------------------------------------------------------------------------


def test_every_checkpoint_file_has_its_size_and_crc32c(finished_iris_run):
    import crc32c

    for name in ("best", "last"):
        ck = finished_iris_run / "checkpoints" / name
        manifest = json.loads((ck / "checksums.json").read_text())
        assert manifest["algorithm"] == "crc32c"
        listed = set(manifest["files"])
        assert listed == {p.name for p in ck.iterdir()} - {"checksums.json"}
        for file, entry in manifest["files"].items():
            data = (ck / file).read_bytes()
            assert entry == {"size": len(data), "crc32c": f"{crc32c.crc32c(data):08x}"}
        assert verify_checksums(ck) is True


def test_damage_is_named_by_file(tmp_path):
    (tmp_path / "a.bin").write_bytes(os.urandom(10_000))
    (tmp_path / "dcp").mkdir()
    (tmp_path / "dcp" / "__0_0.distcp").write_bytes(os.urandom(5000))
    (tmp_path / "empty").write_bytes(b"")
    write_checksums(tmp_path)
    assert set(json.loads((tmp_path / "checksums.json").read_text())["files"]) == {"a.bin", "dcp/__0_0.distcp", "empty"}
    assert verify_checksums(tmp_path)

    garble(tmp_path / "dcp" / "__0_0.distcp")  # a shard of FSDP's sharded checkpoint is covered too
    with pytest.raises(Damaged, match=r"dcp/__0_0.distcp is damaged: its CRC32C is [0-9a-f]{8}, [0-9a-f]{8} when"):
        verify_checksums(tmp_path)
    assert verify_checksums(tmp_path, ["a.bin"])  # only the files asked for are read

    (tmp_path / "a.bin").write_bytes(b"cut")
    with pytest.raises(Damaged, match="a.bin is damaged: 3 bytes, 10000 when it was saved"):
        verify_checksums(tmp_path)
    (tmp_path / "a.bin").unlink()
    with pytest.raises(Damaged, match="a.bin is missing"):
        verify_checksums(tmp_path)
    (tmp_path / "checksums.json").write_text("{not json")
    with pytest.raises(Damaged, match="checksums.json is damaged"):
        verify_checksums(tmp_path)
    outside = {"algorithm": "crc32c", "files": {"../x": {"size": 1, "crc32c": "0"}}}  # names a file outside
    (tmp_path / "checksums.json").write_text(json.dumps(outside))
    with pytest.raises(Damaged, match="checksums.json is damaged"):
        verify_checksums(tmp_path)
    (tmp_path / "checksums.json").unlink()
    assert verify_checksums(tmp_path) is False  # saved before checksums: nothing to check against


def test_fsdp_shards_are_in_the_manifest_and_checked_on_resume(tmp_path):
    """`FSDPRun.save` hands save_checkpoint a temporary directory already holding DCP's shards."""
    from zerotune.train import checkpoint as ckpt

    target = tmp_path / "checkpoints" / "last"
    tmp = ckpt.temporary_dir(target)
    (tmp / "dcp").mkdir()
    (tmp / "dcp" / "__0_0.distcp").write_bytes(os.urandom(3000))
    (tmp / "dcp" / ".metadata").write_bytes(os.urandom(300))
    ckpt.save_checkpoint(target, {"w": torch.ones(3)}, {}, {"progress": {}}, {"rng.torch": torch.zeros(2)}, tmp=tmp)
    files = json.loads((target / "checksums.json").read_text())["files"]
    assert set(files) == {"dcp/__0_0.distcp", "dcp/.metadata", "model.safetensors", "optimizer.safetensors",
                          "state.json"}
    garble(target / "dcp" / "__0_0.distcp", n=16)
    with pytest.raises(Damaged, match="dcp/__0_0.distcp is damaged"):
        ckpt.load_checkpoint(target)


def test_file_checksum_is_crc32c_of_the_bytes(tmp_path):
    import crc32c

    data = os.urandom(1 << 20)
    (tmp_path / "f").write_bytes(data)
    assert file_checksum(tmp_path / "f") == (len(data), f"{crc32c.crc32c(data):08x}")


def test_checked_while_reads_beside_the_check_and_damage_wins(tmp_path):
    """The check runs on a second thread beside the read; a damaged file is named even when the read fails too."""
    import threading

    (tmp_path / "model.safetensors").write_bytes(os.urandom(1 << 20))
    (tmp_path / "state.json").write_text("{}")
    write_checksums(tmp_path)
    threads = []
    read = lambda: threads.append(threading.active_count()) or "weights"  # noqa: E731
    assert checked_while(tmp_path, read, names=["model.safetensors"]) == "weights"
    assert threads == [threading.active_count() + 1]  # the checksum's thread was alive during the read

    def fails():
        raise UserError("model.safetensors is not a valid safetensors file")

    with pytest.raises(UserError, match="not a valid safetensors"):  # sound files: the read's own error
        checked_while(tmp_path, fails, names=["model.safetensors"])
    garble(tmp_path / "model.safetensors")
    for read in (lambda: "weights", fails):
        with pytest.raises(Damaged, match="model.safetensors is damaged: its CRC32C"):
            checked_while(tmp_path, read, names=["model.safetensors"])
    (tmp_path / "state.json").unlink()  # a required file missing: refused before anything is read
    with pytest.raises(Damaged, match="state.json is missing"):
        checked_while(tmp_path, lambda: pytest.fail("read before the files were checked"))


def test_load_weights_into_a_built_model_checks_the_checksum(tmp_path):
    from zerotune.train import checkpoint as ckpt

    model = torch.nn.Linear(64, 64)
    ckpt.save_checkpoint(tmp_path / "best", *ckpt.model_tensors(model), {"step": 0})
    other = torch.nn.Linear(64, 64)
    ckpt.load_weights(tmp_path / "best", other)
    assert torch.equal(other.weight, model.weight)
    garble(tmp_path / "best" / "model.safetensors", offset=200, n=16)
    with pytest.raises(Damaged, match="model.safetensors is damaged"):
        ckpt.load_weights(tmp_path / "best", other)


# -- every reader checks the weights before using them ------------------------------------------


def test_eval_refuses_garbled_weights(run, capsys):
    garble(run / "checkpoints" / "best" / "model.safetensors")
    code, err = zt(capsys, "eval", run)
    one_line_error(code, err, str(run / "checkpoints" / "best" / "model.safetensors"), "is damaged", "CRC32C")
    code, _ = zt(capsys, "eval", run, "--checkpoint", "last")  # the other checkpoint is sound
    assert code == 0


def test_export_refuses_garbled_weights_and_writes_nothing(run, capsys):
    pytest.importorskip("onnx")
    garble(run / "checkpoints" / "best" / "model.safetensors")
    before = tree_hash(run)
    code, err = zt(capsys, "export", run)
    one_line_error(code, err, "best/model.safetensors is damaged")
    assert tree_hash(run) == before and not (run / "export").exists()


def test_serve_refuses_garbled_weights(run):
    from zerotune.serve.model import load_served_model

    garble(run / "checkpoints" / "best" / "model.safetensors")
    with pytest.raises(UserError, match="best/model.safetensors is damaged"):
        load_served_model(run)


def test_finetune_from_garbled_run_is_refused(run, tmp_path, capsys):
    garble(run / "checkpoints" / "best" / "model.safetensors")
    code, err = zt(capsys, "finetune", "--from", run, "--runs-dir", tmp_path / "ft", "--set", "data.name=iris",
                   "--set", "train.epochs=1", "--no-progress")
    one_line_error(code, err, "best/model.safetensors is damaged")
    assert not (tmp_path / "ft").exists()


def test_resume_refuses_garbled_weights_before_training(run, capsys):
    garble(run / "checkpoints" / "last" / "model.safetensors")
    before = tree_hash(run)
    code, err = zt(capsys, "train", "--resume", run, "--set", "train.epochs=5")
    one_line_error(code, err, "last/model.safetensors is damaged", f"to start over, delete {run}")
    assert tree_hash(run) == before


def test_doctor_names_a_damaged_checkpoint(run, capsys):
    from zerotune.doctor import diagnose

    garble(run / "checkpoints" / "best" / "model.safetensors")
    (found,) = [f for f in diagnose(run) if f.id == "damaged_checkpoint"]
    assert found.severity == "high" and "best/model.safetensors is damaged" in found.message
    assert f"zerotune eval {run} --checkpoint last" in found.fixes
    assert main(["doctor", str(run)]) == 0
    assert "best/model.safetensors is damaged" in capsys.readouterr().out


def test_a_deleted_checksums_file_is_damage(run, capsys):
    """state.json records that checksums were written: without them the weights cannot be trusted."""
    (run / "checkpoints" / "best" / "checksums.json").unlink()
    code, err = zt(capsys, "eval", run)
    one_line_error(code, err, "best/checksums.json is missing", "state.json says the checkpoint was saved with it")
    assert main(["doctor", str(run)]) == 0
    assert "checksums.json is missing" in capsys.readouterr().out


def test_checkpoints_saved_before_checksums_still_load(run, capsys, saved_before_checksums):
    """Old checkpoints have no checksums.json: they load unchecked; the doctor notes it, nothing else does."""
    from zerotune.doctor import diagnose

    for name in ("best", "last"):
        saved_before_checksums(run / "checkpoints" / name)
    code, err = zt(capsys, "eval", run)
    assert code == 0 and err == ""
    assert zt(capsys, "train", "--resume", run, "--set", "train.epochs=4")[0] == 0
    assert (run / "checkpoints" / "last" / "checksums.json").is_file()  # the resumed run's new `last` has them
    notes = [f for f in diagnose(run) if f.id == "unchecked_checkpoint"]
    assert [f.severity for f in notes] in ([], ["info"])
    saved_before_checksums(run / "checkpoints" / "last")
    (note,) = [f for f in diagnose(run) if f.id == "unchecked_checkpoint"]
    assert note.severity == "info" and "last" in note.evidence["unchecked"]
