"""The teacher's view of the student's inputs, and the checks that refuse a teacher of other data."""

from pathlib import Path

import pytest
import torch
from torch import nn

from zerotune.data.bundle import DataMeta
from zerotune.distill.teacher import Teacher, check_compatible
from zerotune.errors import UserError


def _meta(**kw) -> DataMeta:
    base = dict(source="wine", task="classification", input_shape=[2], num_classes=2, class_names=["a", "b"],
                x_mean=[0.0, 0.0], x_std=[1.0, 1.0])
    return DataMeta(**{**base, **kw})


def test_inputs_are_renormalised_with_the_teachers_statistics():
    student = _meta(x_mean=[1.0, -1.0], x_std=[2.0, 0.5])
    teacher = Teacher(nn.Identity(), _meta(x_mean=[3.0, 0.0], x_std=[4.0, 1.0]), student, Path("t"))
    x = torch.tensor([[0.5, 2.0], [-1.0, 0.0]])
    raw = x * torch.tensor([2.0, 0.5]) + torch.tensor([1.0, -1.0])
    assert torch.allclose(teacher.logits(x), (raw - torch.tensor([3.0, 0.0])) / torch.tensor([4.0, 1.0]))
    same = Teacher(nn.Identity(), student, student, Path("t"))
    assert same.affine is None and torch.equal(same.logits(x), x)


@pytest.mark.parametrize("teacher,cause", [
    (_meta(task="regression", num_classes=0, class_names=None), "classification on both sides"),
    (_meta(source="iris"), "data set 'iris'"),
    (_meta(class_names=["b", "a"]), "same order"),
    (_meta(input_shape=[3]), "shape (3,)"),
])
def test_teacher_of_other_data_is_refused(teacher, cause):
    with pytest.raises(UserError) as e:
        check_compatible(teacher, _meta(), Path("runs/t"))
    assert cause in str(e.value) and "runs/t" in str(e.value)
