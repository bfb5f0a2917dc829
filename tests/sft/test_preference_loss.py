"""DPO and IPO losses and the answers' log-probs against hand computations."""

import math

import pytest
import torch

from zerotune.config import PreferenceConfig, build_config
from zerotune.data.preference import PairTargets
from zerotune.data.sft import IGNORE
from zerotune.errors import UserError
from zerotune.tasks.preference import PreferenceTask, answer_logps, pair_losses, pair_stats


def _log_sigmoid(z: float) -> float:
    return -math.log1p(math.exp(-z))


@pytest.mark.parametrize("beta, eps", [(0.1, 0.0), (0.5, 0.0), (0.1, 0.2)])
def test_dpo_by_hand(beta, eps):
    policy = torch.tensor([[-3.0, -5.0], [-7.5, -2.0]], dtype=torch.float64)
    reference = torch.tensor([[-4.0, -4.0], [-6.0, -3.0]], dtype=torch.float64)
    got = pair_losses(policy, reference, PreferenceConfig(loss="dpo", beta=beta, label_smoothing=eps))
    for i, (pc, pr), (rc, rr) in zip(range(2), policy.tolist(), reference.tolist()):
        m = (pc - rc) - (pr - rr)
        want = -(1 - eps) * _log_sigmoid(beta * m) - eps * _log_sigmoid(-beta * m)
        assert float(got[i]) == pytest.approx(want, rel=1e-12)


def test_ipo_by_hand():
    policy = torch.tensor([[-3.0, -5.0]], dtype=torch.float64)
    reference = torch.tensor([[-4.0, -4.0]], dtype=torch.float64)
    got = pair_losses(policy, reference, PreferenceConfig(loss="ipo", beta=0.25))
    assert float(got[0]) == pytest.approx((2.0 - 1 / (2 * 0.25)) ** 2)


def test_rewards_margin_and_accuracy():
    policy = torch.tensor([[-3.0, -5.0], [-7.5, -2.0]])
    reference = torch.tensor([[-4.0, -4.0], [-6.0, -3.0]])
    stats = pair_stats(policy, reference, 0.5)
    assert float(stats["rewards/chosen"]) == pytest.approx((0.5 * 1 + 0.5 * -1.5) / 2)
    assert float(stats["rewards/rejected"]) == pytest.approx((0.5 * -1 + 0.5 * 1) / 2)
    assert float(stats["rewards/margin"]) == pytest.approx((1.0 + -1.25) / 2)
    assert float(stats["rewards/accuracy"]) == 0.5
    assert float(stats["logps/chosen"]) == pytest.approx(-5.25)


def test_answer_logps_sum_the_labelled_tokens_only():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[IGNORE, IGNORE, 3, 1, IGNORE], [IGNORE, 4, 4, 0, 6]])
    logp = torch.log_softmax(logits, -1)
    want = [sum(float(logp[r, t, labels[r, t]]) for t in range(5) if labels[r, t] != IGNORE) for r in range(2)]
    assert answer_logps(logits, labels).tolist() == pytest.approx(want, rel=1e-6)


def test_the_task_loss_is_the_mean_over_pairs_and_keeps_train_statistics():
    from zerotune.data.bundle import DataMeta

    task = PreferenceTask(DataMeta("preference", "preference", [8], 7), PreferenceConfig(beta=0.1))
    torch.manual_seed(1)
    logits = torch.randn(4, 5, 7)  # 2 pairs: rows 0-1 chosen, rows 2-3 rejected
    labels = torch.full((4, 5), IGNORE)
    labels[:, 2:] = torch.randint(0, 7, (4, 3))
    reference = torch.tensor([[-9.0, -8.0], [-7.0, -10.0]])
    loss = task.loss(logits, PairTargets(labels, reference))
    logps = answer_logps(logits, labels)
    policy = torch.stack([logps[:2], logps[2:]], 1)
    assert float(loss) == pytest.approx(float(pair_losses(policy, reference, task.cfg).mean()))
    stats = task.take_train_stats()
    assert float(stats["logps/chosen"]) == pytest.approx(float(logps[:2].mean()))
    assert task.take_train_stats() == {}


def test_sft_weight_adds_the_chosen_answers_mean_token_loss():
    from zerotune.data.bundle import DataMeta

    plain, weighted = (PreferenceTask(DataMeta("preference", "preference", [8], 7), PreferenceConfig(sft_weight=w))
                       for w in (0.0, 0.5))
    torch.manual_seed(2)
    logits = torch.randn(4, 5, 7)
    labels = torch.full((4, 5), IGNORE)
    labels[0, 2:] = torch.randint(0, 7, (3,))
    labels[1, 3:] = torch.randint(0, 7, (2,))  # chosen rows: 5 answer tokens in all
    labels[2:, 1:] = torch.randint(0, 7, (2, 4))
    targets = PairTargets(labels, torch.tensor([[-9.0, -8.0], [-7.0, -10.0]]))
    chosen_logps = answer_logps(logits, labels)[:2]
    want = float(plain.loss(logits, targets)) + 0.5 * float(-chosen_logps.sum() / 5)
    assert float(weighted.loss(logits, targets)) == pytest.approx(want, rel=1e-6)


def test_config_is_checked():
    with pytest.raises(UserError, match="preference.loss"):
        build_config({"preference": {"loss": "kto"}})
    with pytest.raises(UserError, match="preference.beta"):
        build_config({"preference": {"beta": 0}})
    with pytest.raises(UserError, match="label_smoothing applies to loss 'dpo'"):
        build_config({"preference": {"loss": "ipo", "label_smoothing": 0.1}})
    with pytest.raises(UserError, match="preference.answer_regex"):
        build_config({"preference": {"answer_regex": "(\\d"}})
