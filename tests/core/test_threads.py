import pytest
import torch

from zerotune.compute.threads import check_threads, torch_threads
from zerotune.errors import UserError


def test_sets_the_count_inside_and_restores_it_after():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before


def test_restores_the_count_when_the_block_fails():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with pytest.raises(RuntimeError, match="boom"):
        with torch_threads(other):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("n", [None, 0])
def test_none_or_zero_leaves_the_count_as_it_is(n):
    before = torch.get_num_threads()
    with torch_threads(n):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before
    assert check_threads(n) is None


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_a_bad_count_is_refused_in_one_line_before_the_block(bad):
    before = torch.get_num_threads()
    with pytest.raises(UserError, match="threads must be a positive integer") as info:
        torch_threads(bad)
    assert "\n" not in str(info.value) and repr(bad) in str(info.value)
    assert torch.get_num_threads() == before


def test_training_uses_train_threads_and_gives_the_count_back(tmp_path):
    from zerotune import load_config, train
    from zerotune.train.callbacks import Callback

    class CountThreads(Callback):
        def on_fit_start(self, state):
            self.seen = torch.get_num_threads()

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    config = load_config(overrides=[
        "data.name=iris", "model.name=logistic_regression", "train.epochs=1", f"train.threads={other}",
        f"log.dir={tmp_path}", "log.tensorboard=false", "log.progress=false"])
    spy = CountThreads()
    train(config, callbacks=[spy])
    assert spy.seen == other and torch.get_num_threads() == before
