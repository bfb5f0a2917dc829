"""Data files that used to be misread or to fail deep inside: each is refused with one line naming the cause."""

import json

import numpy as np
import pytest

from zerotune.config import DataConfig
from zerotune.data import build_data
from zerotune.data.csvtable import load_csv
from zerotune.data.sft import read_records
from zerotune.errors import UserError

RECORD = {"prompt": "2+2?", "response": "4"}


def write_lines(path, lines: list[bytes]):
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


# -- CSV -------------------------------------------------------------------------------------------

def test_a_csv_without_header_is_refused_not_read_with_its_first_row_as_names(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("5.1,3.5,1.4,0\n4.9,3.0,1.4,0\n6.2,2.9,4.3,1\n5.9,3.0,5.1,1\n")
    with pytest.raises(UserError, match=r"the first row \(5\.1, 3\.5, 1\.4, 0\) holds only numbers") as info:
        load_csv(path)
    assert "add a first row of column names" in str(info.value) and "\n" not in str(info.value)


def test_a_header_with_some_numeric_names_is_still_a_header(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("2019,2020,label\n1,2,a\n3,4,b\n5,6,a\n")
    raw = load_csv(path)
    assert raw.feature_names == ["2019", "2020"] and raw.class_names == ["a", "b"] and len(raw.y) == 3


@pytest.mark.parametrize("path,said", [("{tmp}", "is a directory, not a file"), ("/dev/zero", "is not a regular file")])
def test_a_csv_path_that_is_not_a_file_is_said_to_be_what_it_is(tmp_path, path, said):
    with pytest.raises(UserError, match=said):
        load_csv(path.format(tmp=tmp_path))


# -- classes ----------------------------------------------------------------------------------------

def test_a_single_class_table_is_refused_before_training(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i % 3},yes\n" for i in range(20)))
    with pytest.raises(UserError, match=r"data set 'csv' has 1 class \('yes'\); classification needs at least 2 "
                                        r"\(is data.target the right column\?\)"):
        build_data(DataConfig(name="csv", path=str(path)))


def test_two_classes_still_build(tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}\n" for i in range(20)))
    data = build_data(DataConfig(name="csv", path=str(path)))
    assert data.meta.num_classes == 2 and set(np.unique(data.train.y.numpy())) == {0, 1}


# -- instruction-tuning JSONL -------------------------------------------------------------------------

def test_a_line_that_is_not_utf8_is_named_by_file_and_line(tmp_path):
    good = json.dumps(RECORD).encode()
    path = write_lines(tmp_path / "d.jsonl", [good, good, b'{"prompt": "caf\xe9", "response": "x"}', good])
    with pytest.raises(UserError) as info:
        read_records(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: not UTF-8 text (byte 16 of the line") and "\n" not in message


@pytest.mark.parametrize("field,value,said", [("prompt", 5, "'prompt' must be a string (text), not a number"),
                                              ("response", ["4"], "'response' must be a string (text), not a list"),
                                              ("prompt", None, "'prompt' must be a string (text), not null"),
                                              ("prompt", "  ", "empty 'prompt'")])
def test_a_prompt_or_response_that_is_not_text_says_so(tmp_path, field, value, said):
    good = json.dumps(RECORD).encode()
    path = write_lines(tmp_path / "d.jsonl", [good, json.dumps({**RECORD, field: value}).encode(), good, good])
    with pytest.raises(UserError, match=f"{path}:2: {said}".replace("(", r"\(").replace(")", r"\)")):
        read_records(path)


def test_sft_data_path_that_is_a_directory_is_said_to_be_one(tmp_path):
    with pytest.raises(UserError, match=f"data.path {tmp_path} is a directory, not a file"):
        read_records(tmp_path)
