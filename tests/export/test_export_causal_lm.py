"""A Hugging Face causal LM with LoRA adapters exports to ONNX (logits), merged, with parity checked."""

import numpy as np
import onnxruntime as ort
import peft
import pytest
import torch
import transformers

from zerotune.errors import UserError
from zerotune.export.causal_lm import export_causal_lm


@pytest.fixture(scope="module")
def lora_llama():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    model = peft.get_peft_model(transformers.LlamaForCausalLM(cfg),
                                peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    for name, p in model.named_parameters():
        if "lora_B" in name:  # B starts at zero; make the adapters change the logits
            torch.nn.init.normal_(p, std=0.5)
    return model.eval()


def test_merged_lora_llama_exports_logits_equal_to_pytorch(lora_llama, tmp_path):
    ids = torch.randint(0, 64, (2, 9))
    result = export_causal_lm(lora_llama, ids, out=tmp_path / "llama.onnx")
    assert result.merged_adapters and result.parity.ok and result.parity.max_abs_diff < 1e-4
    assert result.parity.agreement == 1.0
    assert (tmp_path / "llama.onnx").read_bytes() == result.onnx

    x = np.random.default_rng(1).integers(0, 64, size=(3, 13))  # another batch and length than traced
    session = ort.InferenceSession(result.onnx, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids"]
    (got,) = session.run(None, {"input_ids": x})
    with torch.no_grad():  # the adapters, unmerged, as trained
        expected = lora_llama(input_ids=torch.from_numpy(x)).logits.numpy()
        base = lora_llama.get_base_model()
        with lora_llama.disable_adapter():
            without = base(input_ids=torch.from_numpy(x)).logits.numpy()
    assert got.shape == (3, 13, 64) and np.abs(got - expected).max() < 1e-4
    assert np.abs(got - without).max() > 1e-2  # the adapters are in the file
    assert any("lora" in n for n, _ in lora_llama.named_parameters())  # the model itself is left as it was


def test_example_ids_must_be_a_batch_of_sequences(lora_llama):
    with pytest.raises(UserError, match="example_ids"):
        export_causal_lm(lora_llama, torch.tensor([1, 2, 3]))
