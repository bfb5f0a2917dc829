"""Preference tuning's losses and metrics: DPO (Rafailov et al. 2023, "Direct Preference Optimization:
Your Language Model is Secretly a Reward Model") and IPO (Azar et al. 2023, "A General Theoretical
Paradigm to Understand Learning from Human Preferences").

A pair's margin is ``m = (logp_chosen - ref_chosen) - (logp_rejected - ref_rejected)``, each
log-probability summed over the answer's tokens, the reference's from the model before tuning.

- dpo: ``-(1 - eps) log sigmoid(beta m) - eps log sigmoid(-beta m)`` (eps: ``label_smoothing``, the
  share of pairs taken to be mislabelled; 0 is the paper's loss);
- ipo: ``(m - 1 / (2 beta))^2``.

The implicit rewards are ``beta (logp - ref)`` of each answer; ``rewards/accuracy`` is the share of
pairs whose chosen answer's reward is the higher.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..compute.precision import autocast_for
from ..data.bundle import DataMeta
from ..data.chat import ChatFormat
from ..data.preference import PairTargets, PreferenceSplit
from ..data.sft import IGNORE
from ..errors import UserError
from ..models.lora import adapters_off
from ..models.modes import eval_mode
from .preference_answers import AnswerCheck

EVAL_BATCH = 16  # pairs per forward pass when measuring
STATS = ("rewards/chosen", "rewards/rejected", "rewards/margin", "rewards/accuracy", "logps/chosen", "logps/rejected")


def answer_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(R,) log-probability of each row's labelled tokens, summed. logits: (R, T, V); labels: (R, T), -100 off."""
    nll = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE, reduction="none")
    return -nll.view(labels.shape).sum(-1)


def pair_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, 2) log-probs of (chosen, rejected) from a batch whose B chosen rows come before the B rejected ones."""
    chosen, rejected = answer_logps(logits, labels).chunk(2)
    return torch.stack([chosen, rejected], dim=1)


def dpo_loss(margin: torch.Tensor, beta: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-pair DPO loss of the margins (conservative DPO with ``label_smoothing`` > 0)."""
    return (-(1 - label_smoothing) * F.logsigmoid(beta * margin)
            - label_smoothing * F.logsigmoid(-beta * margin))


def ipo_loss(margin: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-pair IPO loss: the margin regressed onto 1 / (2 beta)."""
    return (margin - 1 / (2 * beta)) ** 2


def pair_losses(policy: torch.Tensor, reference: torch.Tensor, cfg) -> torch.Tensor:
    """(B,) loss of each pair. policy, reference: (B, 2) log-probs; cfg: the PreferenceConfig."""
    logratio = policy - reference.to(policy.dtype)
    margin = logratio[:, 0] - logratio[:, 1]
    if cfg.loss == "ipo":
        return ipo_loss(margin, cfg.beta)
    return dpo_loss(margin, cfg.beta, cfg.label_smoothing)


def chosen_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per labelled token of the chosen rows (the first half of the batch)."""
    half = len(labels) // 2
    return F.cross_entropy(logits[:half].flatten(0, 1).float(), labels[:half].flatten(), ignore_index=IGNORE)


def pair_stats(policy: torch.Tensor, reference: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
    """Means over the pairs of the rewards, their margin, the reward accuracy and the policy's log-probs."""
    rewards = beta * (policy.detach() - reference.to(policy.dtype))
    chosen, rejected = rewards[:, 0], rewards[:, 1]
    logps = policy.detach()
    return {"rewards/chosen": chosen.mean(), "rewards/rejected": rejected.mean(),
            "rewards/margin": (chosen - rejected).mean(), "rewards/accuracy": (chosen > rejected).float().mean(),
            "logps/chosen": logps[:, 0].mean(), "logps/rejected": logps[:, 1].mean()}


class AdapterReference:
    """The reference of a LoRA run: the model itself with its adapters off, in eval mode, without gradients.

    Args:
        model: the model being tuned (its adapters attached).
        device: where it runs; precision: the resolved ``train.precision``, so the reference's forward
            pass runs as the policy's does and the margin starts at 0.
    """

    def __init__(self, model: torch.nn.Module, device, precision: str = "32"):
        self.model, self.device, self.precision = model, device, precision

    def __call__(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with eval_mode(self.model), adapters_off(self.model), autocast_for(self.device, self.precision):
            return pair_logps(self.model(ids), labels).float()


@torch.no_grad()
def reference_logps(model: torch.nn.Module, split: PreferenceSplit, device, precision: str = "32") -> torch.Tensor:
    """(N, 2) log-probs of every pair of `split` under `model` as it stands (the reference of a full fine-tune)."""
    live = AdapterReference(model, device, precision)
    batches = split.to(device).with_reference(reference=live).in_order(EVAL_BATCH)
    parts = [batches[i][1].reference for i in range(len(batches))]
    return torch.cat(parts).cpu() if parts else torch.zeros(0, 2)


class PreferenceTask:
    """DPO or IPO on pairs; the implicit rewards and the policy's log-probs as metrics, and with
    ``preference.eval_prompts`` the scores of its greedy answers (`tasks/preference_answers.py`).

    Args:
        meta: the data's metadata.
        cfg: the PreferenceConfig (``loss``, ``beta``, ``label_smoothing``, the answers' options).
        loss: ``train.loss``, which must stay ``auto`` (the loss is ``preference.loss``).
        fmt: the chat format answers are written in (None: no answers are scored).
    """

    kind = "preference"
    monitor_default = ("val/loss", "min")

    def __init__(self, meta: DataMeta, cfg, loss: str = "auto", fmt: ChatFormat | None = None):
        if loss != "auto":
            raise UserError(f"train.loss {loss!r} does not fit preference tuning; allowed: auto "
                            f"(the loss is preference.loss: dpo or ipo)")
        self.meta, self.cfg, self.loss_name = meta, cfg, cfg.loss
        self._window: dict[str, torch.Tensor] = {}  # train statistics since `take_train_stats` last read them
        self._window_batches = 0
        self.check = AnswerCheck(fmt, cfg) if fmt is not None else None

    def loss(self, out: torch.Tensor, targets: PairTargets) -> torch.Tensor:
        """Mean loss over the batch's pairs. out: (2B, T, V) logits, the chosen rows first."""
        policy = pair_logps(out, targets.labels)
        stats = pair_stats(policy, targets.reference, self.cfg.beta)
        for k, v in stats.items():  # on the device: read once per logged step, not per micro-batch
            self._window[k] = self._window.get(k, 0) + v
        self._window_batches += 1
        loss = pair_losses(policy, targets.reference, self.cfg).mean()
        if self.cfg.sft_weight:
            loss = loss + self.cfg.sft_weight * chosen_nll(out, targets.labels)
        return loss

    def take_train_stats(self) -> dict[str, torch.Tensor]:
        """The mean of each statistic over the training batches since the last call (empty: none)."""
        n, window = self._window_batches, self._window
        self._window, self._window_batches = {}, 0
        return {k: v / n for k, v in window.items()} if n else {}

    @torch.no_grad()
    def measure(self, model: torch.nn.Module, split: PreferenceSplit) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 2) policy and (N, 2) reference log-probs of every pair, in eval mode."""
        if split.ref is None and split.reference is None:  # a LoRA run loaded back: its own adapters switched off
            device = next(model.parameters()).device
            split = split.with_reference(reference=AdapterReference(model, device))
        policy, reference = [], []
        with eval_mode(model):
            batches = split.in_order(EVAL_BATCH)
            for i in range(len(batches)):
                x, targets = batches[i]
                policy.append(pair_logps(model(x), targets.labels).float())
                reference.append(targets.reference.float())
        return torch.cat(policy), torch.cat(reference)

    def _summary(self, model, split: PreferenceSplit) -> dict[str, float]:
        policy, reference = self.measure(model, split)
        loss = pair_losses(policy, reference, self.cfg).mean()
        if self.cfg.sft_weight:  # the chosen answers' mean token loss over the split, as training adds it per batch
            loss = loss - self.cfg.sft_weight * policy[:, 0].sum() / (split.y[:, 0] != IGNORE).sum().clamp(min=1)
        out = {"loss": float(loss)}
        out.update({k: float(v) for k, v in pair_stats(policy, reference, self.cfg.beta).items()})
        return out

    def metric_names(self, prefix: str) -> list[str]:
        """The names `quick_metrics` gives."""
        answers = self.check.names() if self._scored() else []
        return [f"{prefix}/loss", *(f"{prefix}/{s}" for s in (*STATS, *answers))]

    def quick_metrics(self, model: torch.nn.Module, split: PreferenceSplit, prefix: str) -> dict[str, float]:
        """Loss, rewards, reward accuracy and log-probs over the split, each as ``prefix/name``."""
        if not len(split):
            return {}
        out = self._summary(model, split)
        if self._scored():
            out.update(self.check.scores(model, split, min(len(split), self.cfg.eval_prompts)))
        return {f"{prefix}/{k}": v for k, v in out.items()}

    def full_metrics(self, model: torch.nn.Module, split: PreferenceSplit) -> dict:
        """What `eval` prints and metrics.json keeps: the above, with ``preference_accuracy`` and ``n``."""
        if not len(split):
            return {"loss": float("nan"), "n": 0}
        out = self._summary(model, split)
        if self._scored():
            out.update(self.check.scores(model, split, len(split)))
        return {"loss": out["loss"], "preference_accuracy": out["rewards/accuracy"], **out, "n": len(split)}

    def _scored(self) -> bool:
        return self.check is not None and self.cfg.eval_prompts > 0
