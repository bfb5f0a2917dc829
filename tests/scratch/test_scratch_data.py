"""Loading, validation and splitting: bad input must give a UserError that names the cause."""

import numpy as np
import pytest

from zerotune.errors import UserError
from zerotune.scratch import fit_linreg, fit_logreg, fit_mlp, load_table, split
from zerotune.scratch.data import as_classification, as_regression


def write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_builtin_shapes():
    for name, shape in [("diabetes", (442, 10)), ("breast_cancer", (569, 30)), ("iris", (150, 4)),
                        ("wine", (178, 13)), ("digits", (1797, 64))]:
        t = load_table(name)
        assert t.X.shape == shape and t.X.dtype == np.float64 and len(t.feature_names) == shape[1]
    assert load_table("diabetes").X[:, 0].max() > 50  # raw units (age in years), not pre-scaled


def test_csv_regression_and_feature_selection(tmp_path):
    path = write(tmp_path, "a,b,t\n1,2,3\n2,4,6.5\n3,1,4\n")
    t = load_table(path, target="t")
    assert t.task == "regression" and t.feature_names == ["a", "b"]
    np.testing.assert_array_equal(t.y, [3, 6.5, 4])
    assert load_table(path, target="t", features=["b"]).X[:, 0].tolist() == [2, 4, 1]


def test_csv_text_labels_become_classes(tmp_path):
    path = write(tmp_path, "x,kind\n1,cat\n2,dog\n3,cat\n")
    t = load_table(path, target="kind")
    assert t.task == "classification" and t.class_names == ["cat", "dog"]
    assert t.y.tolist() == [0, 1, 0]
    with pytest.raises(UserError, match="class labels"):
        as_regression(t)


@pytest.mark.parametrize("text,target,pattern", [
    ("a,b,t\n1,x2,3\n2,4,5\n", "t", r"column 'b' .* not numeric: line 2 holds 'x2'"),
    ("a,b,t\n1,,3\n2,4,5\n", "t", r"column 'b' .* missing/NaN"),
    ("a,b,t\n1,nan,3\n2,4,5\n", "t", r"column 'b' .* missing/NaN"),
    ("a,b,t\n1,2,3\n2,4,nan\n", "t", r"column 't' .* missing/NaN"),
    ("a,b,t\n1,2\n", "t", r"line 2 has 2 fields"),
    ("a,b,t\n1,2,3\n", None, r"--target is required.*a, b, t"),
    ("a,b,t\n1,2,3\n", "z", r"target column 'z' not in"),
])
def test_bad_csv(tmp_path, text, target, pattern):
    with pytest.raises(UserError, match=pattern):
        load_table(write(tmp_path, text), target=target)


def test_unknown_dataset_and_missing_file(tmp_path):
    with pytest.raises(UserError, match="unknown dataset 'mnist'"):
        load_table("mnist")
    with pytest.raises(UserError, match="does not exist"):
        load_table(str(tmp_path / "nope.csv"), target="t")
    with pytest.raises(UserError, match="--target applies to CSV"):
        load_table("iris", target="x")
    with pytest.raises(UserError, match="feature 'height' not found"):
        load_table("diabetes", features=["height"])


def test_api_rejects_bad_arrays():
    with pytest.raises(UserError, match="X and y do not match: X has 3 rows but y has 2"):
        fit_linreg([[1.0], [2.0], [3.0]], [1.0, 2.0])
    with pytest.raises(UserError, match="X contains NaN"):
        fit_linreg([[1.0], [np.nan], [3.0]], [1.0, 2.0, 3.0])
    with pytest.raises(UserError, match="y contains NaN"):
        fit_linreg([[1.0], [2.0], [3.0]], [1.0, np.nan, 3.0])
    with pytest.raises(UserError, match="X is not numeric"):
        fit_linreg([["a"], ["b"]], [1.0, 2.0])
    with pytest.raises(UserError, match="y is not numeric"):
        fit_linreg([[1.0], [2.0]], ["a", "b"])
    with pytest.raises(UserError, match="class indices"):
        fit_logreg([[1.0], [2.0]], [0.5, 1.0])
    with pytest.raises(UserError, match="single class"):
        fit_mlp([[1.0], [2.0]], [1, 1])
    with pytest.raises(UserError, match="momentum must be in"):
        fit_linreg([[1.0], [2.0]], [1.0, 2.0], momentum=1.5)
    with pytest.raises(UserError, match="method must be one of"):
        fit_linreg([[1.0], [2.0]], [1.0, 2.0], method="adam")


def test_regression_target_is_not_a_classification_target():
    with pytest.raises(UserError, match="continuous; use `scratch linreg`"):
        as_classification(load_table("diabetes"))


def test_split_uses_training_statistics_only():
    t = load_table("wine")
    s = split(t.X, t.y, test_size=0.25, seed=3)
    np.testing.assert_allclose(s.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(s.X_train.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(s.mean, s.X_train_raw.mean(axis=0))
    np.testing.assert_allclose(s.X_test, (s.X_test_raw - s.mean) / s.std)
    assert np.abs(s.X_test.mean(axis=0)).max() > 1e-3  # test rows are not re-centred
    again = split(t.X, t.y, test_size=0.25, seed=3)
    np.testing.assert_array_equal(s.y_test, again.y_test)
    assert (s.X_train.shape[0], s.X_test.shape[0]) == (133, 45)


def test_constant_column_does_not_divide_by_zero():
    t = load_table("digits")  # pixel 0 is always 0
    s = split(t.X, t.y, seed=0)
    assert np.isfinite(s.X_train).all() and s.std[0] == 1.0


def test_numeric_csv_labels_and_class_size_check(tmp_path):
    path = write(tmp_path, "x,label\n" + "\n".join(f"{i},{i % 3}" for i in range(12)))
    t = as_classification(load_table(path, target="label"))
    assert t.class_names == ["0", "1", "2"] and t.y.tolist()[:4] == [0, 1, 2, 0]
    lonely = write(tmp_path, "x,label\n1,0\n2,0\n3,1\n4,1\n5,2\n", "lonely.csv")
    t = as_classification(load_table(lonely, target="label"))
    with pytest.raises(UserError, match="class 2 has a single row"):
        split(t.X, t.y, stratify=True)
