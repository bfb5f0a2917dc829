"""LoRA wrappers against plain layers, adapter placement, merging, and target names that match nothing."""

import pytest
import torch
from torch import nn

from zerotune.config import FinetuneConfig
from zerotune.errors import UserError
from zerotune.models.lora import LoRAConv2d, LoRALinear, apply_lora, merge_into_base
from zerotune.models import create_model


def _randomise(module):
    with torch.no_grad():
        module.lora_B.normal_(0, 0.1)


@pytest.mark.parametrize("make, x", [
    (lambda: LoRALinear(nn.Linear(6, 4), rank=2, alpha=4, dropout=0.0), torch.randn(3, 6)),
    (lambda: LoRAConv2d(nn.Conv2d(3, 5, 3, padding="same"), rank=2, alpha=4, dropout=0.0), torch.randn(2, 3, 7, 7)),
    (lambda: LoRAConv2d(nn.Conv2d(3, 5, 3, stride=2, padding=1), rank=4, alpha=1, dropout=0.0), torch.randn(2, 3, 8, 8)),
])
def test_adapter_starts_as_the_base_layer_and_merges_to_the_same_function(make, x):
    torch.manual_seed(0)
    layer = make()
    assert torch.equal(layer(x), layer.base(x))  # B = 0: training starts from the base model
    _randomise(layer)
    assert not torch.allclose(layer(x), layer.base(x))
    merged = layer.merged()
    assert type(merged) is type(layer.base)
    torch.testing.assert_close(merged(x), layer(x), atol=1e-5, rtol=1e-5)


def test_lora_on_our_cnn_wraps_every_linear_and_conv_of_the_features_but_not_the_head():
    torch.manual_seed(0)
    model = create_model("cnn", input_shape=(1, 8, 8), num_outputs=5, channels=[8, 16], dense=32)
    x = torch.randn(4, 1, 8, 8)
    model.eval()
    ref = model(x)
    names = apply_lora(model, FinetuneConfig(source="x", strategy="lora", lora_rank=2))
    assert sorted({n.rsplit(".", 1)[0] for n in names}) == ["features.0", "features.3", "features.6"]
    assert isinstance(model.head, nn.Linear)
    assert torch.equal(model(x), ref)
    for m in model.modules():
        if isinstance(m, (LoRALinear, LoRAConv2d)):
            _randomise(m)
    tuned = model(x)
    merge_into_base(model)
    assert not any("lora_" in n for n, _ in model.named_parameters())
    torch.testing.assert_close(model(x), tuned, atol=1e-5, rtol=1e-5)


def test_lora_targets_by_glob_and_by_class_name():
    model = create_model("cnn", input_shape=(1, 8, 8), num_outputs=5, channels=[8, 16], dense=32)
    names = apply_lora(model, FinetuneConfig(source="x", strategy="lora", lora_targets=["Linear"]))
    assert {n.rsplit(".", 1)[0] for n in names} == {"features.6"}
    model = create_model("cnn", input_shape=(1, 8, 8), num_outputs=5, channels=[8, 16], dense=32)
    names = apply_lora(model, FinetuneConfig(source="x", strategy="lora", lora_targets=["3"]))
    assert {n.rsplit(".", 1)[0] for n in names} == {"features.3"}


def test_target_names_that_match_nothing_are_refused():
    model = create_model("cnn", input_shape=(1, 8, 8), num_outputs=5, channels=[8, 16], dense=32)
    with pytest.raises(UserError, match=r"lora_targets: 'attn' matches no Linear/Conv2d module .*features.0"):
        apply_lora(model, FinetuneConfig(source="x", strategy="lora", lora_targets=["attn"]))


def test_peft_adapters_on_a_transformer(tiny_bert):
    from zerotune.models.hf import PAD

    torch.manual_seed(0)
    model = create_model("hf", input_shape=(12,), num_outputs=2, path=str(tiny_bert))
    model.eval()
    x = torch.full((3, 12), PAD)
    x[:, :5] = torch.randint(5, 20, (3, 5))
    ref = model(x)
    names = apply_lora(model, FinetuneConfig(source="x", strategy="lora", lora_rank=4))
    # query and value of 2 layers, A and B each
    assert len(names) == 8 and all(".query." in n or ".value." in n for n in names)
    torch.testing.assert_close(model(x), ref)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    tuned = model(x)
    merge_into_base(model)
    assert not any("lora_" in n for n, _ in model.named_parameters())
    torch.testing.assert_close(model(x), tuned, atol=1e-5, rtol=1e-4)
    with pytest.raises(UserError, match="'q_proj' matches no .* names there: .*query"):
        apply_lora(create_model("hf", input_shape=(12,), num_outputs=2, path=str(tiny_bert)),
                   FinetuneConfig(source="x", strategy="lora", lora_targets=["q_proj"]))
