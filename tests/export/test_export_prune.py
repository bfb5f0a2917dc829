"""Magnitude pruning: which weights go, what stays zero through fine-tuning, pruned exports."""

import json

import pytest
import torch
from torch import nn

from zerotune.data.bundle import Split
from zerotune.errors import UserError
from zerotune.export import ExportOptions, export_run
from zerotune.export.prune import finetune, make_permanent, prunable_layers, prune_model, sparsity


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(6 * 4 * 4, 12), nn.ReLU(), nn.Linear(12, 3)).eval()


def test_global_pruning_removes_the_smallest_weights_across_layers():
    model = small_cnn()
    pruned = make_permanent(prune_model(model, "global", 0.6))
    before = torch.cat([m.weight.detach().abs().flatten() for m in prunable_layers(model)])
    after = torch.cat([m.weight.detach().flatten() for m in prunable_layers(pruned)])
    zero = after == 0
    assert int(zero.sum()) == round(0.6 * len(before))
    assert before[zero].max() <= before[~zero].min()  # a single threshold, ranked over all layers
    assert sparsity(pruned) == pytest.approx(0.6, abs=1e-3)
    assert sparsity(model) == 0.0  # pruning works on a copy
    assert not any(name.endswith(("_orig", "_mask")) for name, _ in pruned.named_parameters())


def test_channel_pruning_zeroes_whole_output_channels_except_the_output_layer():
    model = small_cnn()
    pruned = make_permanent(prune_model(model, "channel", 0.5))
    *hidden, head = prunable_layers(pruned)
    for layer, orig in zip(hidden, prunable_layers(model)):
        rows = layer.weight.detach().flatten(1)
        dead = (rows == 0).all(dim=1)
        assert int(dead.sum()) == round(0.5 * rows.shape[0])
        norms = orig.weight.detach().flatten(1).norm(dim=1)
        assert norms[dead].max() <= norms[~dead].min()  # the channels with the smallest L2 norm
        assert int((rows[~dead] == 0).sum()) == 0  # nothing else touched
    assert torch.equal(head.weight, prunable_layers(model)[-1].weight)


def test_channel_pruning_needs_hidden_layers():
    with pytest.raises(UserError, match="channel pruning needs hidden layers"):
        prune_model(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), "channel", 0.5)


def test_finetuning_keeps_pruned_weights_at_zero_and_lowers_the_loss():
    torch.manual_seed(0)
    x = torch.randn(256, 1, 4, 4)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + (x[:, 0, 0, 0] > 1).long()
    model = small_cnn()
    pruned = prune_model(model, "global", 0.7)
    zeros = [m.weight.detach() == 0 for m in prunable_layers(pruned)]
    loss = nn.functional.cross_entropy
    with torch.no_grad():
        before = float(loss(pruned(x), y))
    finetune(pruned, Split(x, y), loss, epochs=5, lr=1e-2, batch_size=32)
    make_permanent(pruned)
    with torch.no_grad():
        after = float(loss(pruned(x), y))
    assert after < before
    for mask, m in zip(zeros, prunable_layers(pruned)):
        assert (m.weight.detach()[mask] == 0).all()
    assert sparsity(pruned) >= 0.7 - 1e-3
    assert not pruned.training


def test_pruned_finetuned_export(cnn_run, tmp_path):
    r = export_run(cnn_run, ExportOptions(prune="global", amount=0.4, finetune_epochs=1), out=tmp_path)
    assert r.path.name == "model-pruned-global40-ft1.onnx"
    side = json.loads(r.sidecar.read_text())["export"]
    assert side["prune"] == "global" and side["finetune_epochs"] == 1
    assert side["sparsity"] == pytest.approx(0.4, abs=0.01)
    assert r.parity[0].max_abs_diff < 1e-4  # the file is exactly the pruned, fine-tuned model
