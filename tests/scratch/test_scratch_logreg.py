"""Logistic regression against scikit-learn on the same split and the same objective."""

import numpy as np
import pytest

from zerotune.scratch import fit_logreg, load_table, split
from zerotune.scratch.logreg import sklearn_reference


@pytest.mark.parametrize("name,binary", [
    ("breast_cancer", True), ("iris", False), ("wine", False), ("digits", False),
])
def test_within_one_point_of_sklearn(name, binary):
    t = load_table(name)
    s = split(t.X, t.y, test_size=0.25, seed=0, stratify=True)
    r = fit_logreg(s.X_train, s.y_train, l2=1e-2, lr=0.5, momentum=0.9, iters=2000, tol=1e-8)
    assert r.binary is binary
    ref = sklearn_reference(s.X_train, s.y_train, s.X_test, s.y_test, l2=1e-2)
    ours = r.accuracy(s.X_test, s.y_test)
    assert abs(ours - ref["test_accuracy"]) <= 0.01
    assert abs(r.accuracy(s.X_train, s.y_train) - ref["train_accuracy"]) <= 0.01
    assert ours > 0.9


def test_same_optimum_as_sklearn_binary():
    from sklearn.linear_model import LogisticRegression

    t = load_table("breast_cancer")
    s = split(t.X, t.y, seed=0, stratify=True)
    l2 = 1e-2
    r = fit_logreg(s.X_train, s.y_train, l2=l2, lr=0.5, momentum=0.9, iters=5000, tol=1e-10)
    clf = LogisticRegression(C=1 / (l2 * len(s.y_train)), tol=1e-12, max_iter=10_000)
    clf.fit(s.X_train, s.y_train)
    np.testing.assert_allclose(r.params["w"], clf.coef_[0], rtol=1e-4, atol=1e-5)


def test_l2_shrinks_weights():
    t = load_table("iris")
    s = split(t.X, t.y, seed=0, stratify=True)
    weak = fit_logreg(s.X_train, s.y_train, l2=1e-3, lr=0.5, momentum=0.9, iters=500)
    strong = fit_logreg(s.X_train, s.y_train, l2=1.0, lr=0.5, momentum=0.9, iters=500)
    assert np.linalg.norm(strong.params["W"]) < 0.2 * np.linalg.norm(weak.params["W"])


def test_probabilities_sum_to_one():
    t = load_table("wine")
    s = split(t.X, t.y, seed=0, stratify=True)
    r = fit_logreg(s.X_train, s.y_train, l2=1e-2, lr=0.5, iters=50)
    np.testing.assert_allclose(r.predict_proba(s.X_test).sum(axis=1), 1.0, rtol=1e-12)
