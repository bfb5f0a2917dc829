import numpy as np
import pytest

from zerotune.data.csvtable import load_csv
from zerotune.errors import UserError


def _csv(tmp_path, text, name="t.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_string_target_classification(tmp_path):
    p = _csv(tmp_path, "a,b,species\n1,2.5,versicolor\n3,-4,setosa\n\n5,6e1,virginica\n7,8,setosa\n")
    ds = load_csv(p)
    assert ds.task == "classification"
    assert ds.class_names == ["setosa", "versicolor", "virginica"]
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [1, 0, 2, 0]
    assert ds.x.dtype == np.float32 and ds.x.shape == (4, 2)
    np.testing.assert_array_equal(ds.x, [[1, 2.5], [3, -4], [5, 60], [7, 8]])
    assert ds.feature_names == ["a", "b"] and ds.extra["categories"] == {}


def test_regression_auto_and_named_target(tmp_path):
    p = _csv(tmp_path, "price,rooms,area\n100.5,3,50\n200.25,4,80\n150,2,60\n")
    ds = load_csv(p, target="price")
    assert ds.task == "regression" and ds.class_names is None
    assert ds.y.dtype == np.float32 and ds.y.tolist() == [100.5, 200.25, 150.0]
    assert ds.feature_names == ["rooms", "area"]
    np.testing.assert_array_equal(ds.x, [[3, 50], [4, 80], [2, 60]])


def test_integer_target_auto(tmp_path):
    # Few distinct integers: classification, classes sorted numerically ("10" after "2").
    p = _csv(tmp_path, "x,y\n0.1,10\n0.2,2\n0.3,1.0\n0.4,2\n")
    ds = load_csv(p)
    assert ds.task == "classification" and ds.class_names == ["1.0", "2", "10"]
    assert ds.y.tolist() == [2, 1, 0, 1]
    # Many distinct integers: regression.
    rows = "".join(f"{i},{i * 3}\n" for i in range(25))
    ds = load_csv(_csv(tmp_path, "x,y\n" + rows, "many.csv"))
    assert ds.task == "regression" and ds.y[24] == 72
    # ... unless asked for.
    assert load_csv(_csv(tmp_path, "x,y\n" + rows, "many.csv"), task="classification").y.max() == 24


def test_one_hot_categorical_feature(tmp_path):
    p = _csv(tmp_path, "color;size;label\nred;1;a\nblue;2;b\nred;3;a\ngreen;4;b\n")  # ';' sniffed
    ds = load_csv(p)
    assert ds.feature_names == ["color=blue", "color=green", "color=red", "size"]
    np.testing.assert_array_equal(ds.x, [[0, 0, 1, 1], [1, 0, 0, 2], [0, 0, 1, 3], [0, 1, 0, 4]])
    assert ds.extra["categories"] == {"color": ["blue", "green", "red"]}
    assert ds.extra["target"] == "label"


def test_too_many_categories(tmp_path):
    rows = "".join(f"id{i},{i},{i % 2}\n" for i in range(10))
    with pytest.raises(UserError, match="column 'name' is not numeric and has 10 distinct values"):
        load_csv(_csv(tmp_path, "name,v,t\n" + rows), max_categories=5)


@pytest.mark.parametrize("cell", ["", "NA", "nan", "?", "NULL", "-nan"])
def test_missing_value_names_line_and_column(tmp_path, cell):
    p = _csv(tmp_path, f"a,b,c\n1,2,3\n4,{cell},6\n")
    with pytest.raises(UserError, match=r"line 3, column 'b' is missing"):
        load_csv(p)


def test_infinite_value(tmp_path):
    with pytest.raises(UserError, match="line 2, column 'a' is '-inf'"):
        load_csv(_csv(tmp_path, "a,b\n-inf,1\n"))
    with pytest.raises(UserError, match="column 'a' has values too large for float32"):
        load_csv(_csv(tmp_path, "a,b\n1e300,1\n", "big.csv"))
    with pytest.raises(UserError, match="target 'b' has values too large for float32"):
        load_csv(_csv(tmp_path, "a,b\n1,1e300\n2,3.5\n", "bigt.csv"), task="regression")


def test_ragged_row_line_number(tmp_path):
    p = _csv(tmp_path, "a,b,c\n1,2,3\n4,5\n7,8,9\n")
    with pytest.raises(UserError, match="line 3 has 2 fields; expected 3"):
        load_csv(p)


def test_bad_arguments_and_files(tmp_path):
    p = _csv(tmp_path, "a,b\n1,x\n2,y\n")
    with pytest.raises(UserError, match="no column 'z'; columns: a, b"):
        load_csv(p, target="z")
    with pytest.raises(UserError, match="allowed: auto, classification, regression"):
        load_csv(p, task="ranking")
    with pytest.raises(UserError, match="non-numeric value 'x'; regression needs numbers"):
        load_csv(p, task="regression")
    with pytest.raises(UserError, match="fractional values"):
        load_csv(_csv(tmp_path, "a,b\n1,0.5\n2,1.5\n", "f.csv"), task="classification")
    with pytest.raises(UserError, match="is empty"):
        load_csv(_csv(tmp_path, "\n\n", "e.csv"))
    with pytest.raises(UserError, match="no data rows"):
        load_csv(_csv(tmp_path, "a,b\n", "h.csv"))
    with pytest.raises(UserError, match="duplicate column names in the header: a"):
        load_csv(_csv(tmp_path, "a,a,b\n1,2,3\n", "d.csv"))
    with pytest.raises(UserError, match="does not exist"):
        load_csv(tmp_path / "missing.csv")
    (tmp_path / "latin.csv").write_bytes("a,b\n1,caf\xe9\n".encode("latin1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_csv(tmp_path / "latin.csv")


def test_quoted_fields_and_bom(tmp_path):
    p = tmp_path / "q.csv"
    p.write_bytes('\ufeff"x","city","y"\n1,"New York, NY",0\n2,"Paris",1\n'.encode("utf-8"))
    ds = load_csv(p)
    assert ds.feature_names == ["x", "city=New York, NY", "city=Paris"]
    assert ds.y.tolist() == [0, 1] and ds.class_names == ["0", "1"]


def test_several_files_are_one_table(tmp_path):
    a = _csv(tmp_path, "x,colour,y\n1,red,a\n2,blue,b\n", "a.csv")
    b = _csv(tmp_path, "x,colour,y\n3,green,a\n\n4,red,c\n", "b.csv")
    whole = load_csv(_csv(tmp_path, "x,colour,y\n1,red,a\n2,blue,b\n3,green,a\n4,red,c\n", "whole.csv"))
    joined = load_csv([a, b])
    np.testing.assert_array_equal(joined.x, whole.x)
    np.testing.assert_array_equal(joined.y, whole.y)
    assert (joined.class_names, joined.feature_names) == (whole.class_names, whole.feature_names)
    assert joined.extra["categories"] == whole.extra["categories"] == {"colour": ["blue", "green", "red"]}


def test_several_files_need_one_header_and_errors_name_the_file(tmp_path):
    a = _csv(tmp_path, "x,colour,y\n1,red,a\n2,blue,b\n", "a.csv")
    other = _csv(tmp_path, "x,y,colour\n1,a,red\n", "other.csv")
    with pytest.raises(UserError, match=r"other.csv: columns x, y, colour differ from those of \S*a.csv: x, colour, y"):
        load_csv([a, other])
    holed = _csv(tmp_path, "x,colour,y\n1,red,a\nNA,blue,b\n", "holed.csv")
    with pytest.raises(UserError, match=r"holed.csv: line 3, column 'x' is missing"):
        load_csv([a, holed])


def test_data_path_as_a_list_for_csv_and_refused_for_one_folder_sources(tmp_path):
    from zerotune.config import DataConfig
    from zerotune.data.build import build_data

    rows = [f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(40)]
    a = _csv(tmp_path, "p,q,y\n" + "\n".join(rows[:25]) + "\n", "a.csv")
    b = _csv(tmp_path, "p,q,y\n" + "\n".join(rows[25:]) + "\n", "b.csv")
    whole = _csv(tmp_path, "p,q,y\n" + "\n".join(rows) + "\n", "whole.csv")
    joined = build_data(DataConfig(name="csv", path=[str(a), str(b)]))
    single = build_data(DataConfig(name="csv", path=str(whole)))
    for split in ("train", "val", "test"):
        assert bool((joined.split(split).x == single.split(split).x).all())
    with pytest.raises(UserError, match="data set 'mnist' reads one data.path, got 2"):
        build_data(DataConfig(name="mnist", path=[str(tmp_path), str(tmp_path)]))
