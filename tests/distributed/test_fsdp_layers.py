"""Which modules FSDP shards one by one: a transformer's layers, for the zerotune GPT and a Hugging Face model."""

import pytest
import torch

from zerotune.distributed.fsdp import layers_to_shard


def test_the_gpt_blocks_are_the_layers():
    from zerotune.models.gpt import GPT, GPTConfig

    model = GPT(GPTConfig(n_layer=3, n_head=2, n_embd=16), block_size=8, vocab_size=11)
    assert layers_to_shard(model) == list(model.features.blocks)


def test_a_hugging_face_encoder_shards_its_layers_in_one_rank(tmp_path):
    transformers = pytest.importorskip("transformers")
    import torch.distributed as dist
    from torch.distributed.tensor import DTensor

    from zerotune.distributed.fsdp import shard_model

    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=16)
    model = transformers.BertModel(cfg)
    assert layers_to_shard(model) == list(model.encoder.layer)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        shard_model(model, torch.device("cpu"), "32")
        model(torch.randint(0, 50, (2, 8))).last_hidden_state.sum().backward()
        assert all(isinstance(p.grad, DTensor) for p in model.parameters() if p.grad is not None)
        norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
        assert torch.isfinite(norm.full_tensor())
    finally:
        dist.destroy_process_group()
