"""LoRA adapters are merged before export: the file holds a plain model with the same outputs."""

import torch

from zerotune.config import FinetuneConfig
from zerotune.export.prepare import prepare_for_export
from zerotune.models.lora import LoRALinear, apply_lora
from zerotune.models import create_model


def test_lora_model_is_merged_into_a_plain_model_with_equal_outputs():
    torch.manual_seed(0)
    model = create_model("mlp", input_shape=(12,), num_outputs=3, hidden=[16, 8])
    apply_lora(model, FinetuneConfig(strategy="lora", lora_rank=4))
    for name, p in model.named_parameters():
        if "lora_B" in name:  # B starts at zero; make the adapters change the output
            torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(5, 12)
    model.eval()
    with torch.no_grad():
        expected = model(x)
    exported = prepare_for_export(model, x)
    assert not any(isinstance(m, LoRALinear) for m in exported.modules())
    assert not any("lora_" in n for n, _ in exported.named_parameters())
    with torch.no_grad():
        assert torch.allclose(exported(x), expected, atol=1e-5)
    assert any(isinstance(m, LoRALinear) for m in model.modules())  # the trained model is left as it was
