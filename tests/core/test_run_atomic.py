"""All-or-nothing writes (run/atomic.py): a target holds the old content or the new, and no temporary stays."""

import errno
import os

import pytest

from zerotune.run.atomic import (TEMPORARY_GLOB, atomic_file, atomic_write_bytes, atomic_write_text, publish_dir,
                                 replace_dir, temporary_dir)


def test_a_file_is_replaced_whole_and_no_temporary_stays(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic_write_text(target, "old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and os.listdir(target.parent) == ["a.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(ValueError), atomic_file(target) as f:
        f.write(b"half")
        raise ValueError("the checksum did not match")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.bin"]


def test_a_disk_error_names_the_target_not_the_temporary(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left") as caught:
        atomic_write_text(tmp_path / "metrics.json", "{}")
    assert caught.value.filename == str(tmp_path / "metrics.json") and os.listdir(tmp_path) == []


def test_a_folder_is_swapped_into_place(tmp_path):
    target = tmp_path / "tokenizer"
    for content in ("old", "new"):
        tmp = temporary_dir(target)
        assert tmp.match(TEMPORARY_GLOB) and tmp.parent == tmp_path
        (tmp / "vocab.txt").write_text(content)
        replace_dir(tmp, target)
    assert (target / "vocab.txt").read_text() == "new" and os.listdir(tmp_path) == ["tokenizer"]


def test_the_first_published_folder_stays(tmp_path):
    target = tmp_path / "cache"
    first, second = temporary_dir(target), temporary_dir(target)
    (first / "a").write_text("first")
    (second / "a").write_text("second")
    assert publish_dir(first, target) and not publish_dir(second, target)
    assert (target / "a").read_text() == "first" and os.listdir(tmp_path) == ["cache"]
