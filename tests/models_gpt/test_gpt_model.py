import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from zerotune.errors import UserError
from zerotune.models import create_model, get_model_entry
from zerotune.models.gpt import GPT

os.environ.setdefault("HF_HUB_OFFLINE", "1")

V, BS = 50, 16


def tiny(**kw) -> GPT:
    opts = {"n_layer": 2, "n_head": 2, "n_embd": 32}
    opts.update(kw)
    return create_model("gpt", input_shape=(BS,), num_outputs=V, **opts)


def ids(B=3, T=BS, seed=0):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


# -- reference: transformers' GPT-2 ----------------------------------------------------------------


def copy_from_hf(ours: GPT, hf) -> None:
    """GPT-2's Conv1D keeps weights as (in, out); our Linear as (out, in)."""
    sd = hf.state_dict()
    f = ours.features
    with torch.no_grad():
        f.wte.weight.copy_(sd["transformer.wte.weight"])
        f.wpe.weight.copy_(sd["transformer.wpe.weight"])
        for i, b in enumerate(f.blocks):
            h = f"transformer.h.{i}."
            for ours_mod, name in [(b.ln_1, "ln_1"), (b.ln_2, "ln_2")]:
                ours_mod.weight.copy_(sd[h + name + ".weight"])
                ours_mod.bias.copy_(sd[h + name + ".bias"])
            for ours_lin, name in [(b.attn.qkv, "attn.c_attn"), (b.attn.proj, "attn.c_proj"),
                                   (b.mlp.fc, "mlp.c_fc"), (b.mlp.proj, "mlp.c_proj")]:
                ours_lin.weight.copy_(sd[h + name + ".weight"].T)
                ours_lin.bias.copy_(sd[h + name + ".bias"])
        f.ln_f.weight.copy_(sd["transformer.ln_f.weight"])
        f.ln_f.bias.copy_(sd["transformer.ln_f.bias"])


@pytest.mark.parametrize("hf_act, ours_act", [("gelu", "gelu"), ("gelu_new", "gelu_tanh")])
def test_matches_transformers_gpt2(hf_act, ours_act):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=BS, vocab_size=V,
                                    activation_function=hf_act, resid_pdrop=0.0, embd_pdrop=0.0,
                                    attn_pdrop=0.0)).eval()
    with torch.no_grad():  # random biases and norms too, so every mapping is exercised
        for n, p in hf.named_parameters():
            if n.endswith("bias") or "ln_" in n:
                p.normal_(0, 0.1).add_(1.0 if n.endswith("weight") else 0.0)
    ours = tiny(positions="learned", bias=True, tie_weights=True, activation=ours_act).eval()
    copy_from_hf(ours, hf)
    x = ids()
    with torch.no_grad():
        ref = hf(input_ids=x).logits
        out = ours(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


# -- registry, structure, counts ---------------------------------------------------------------------


def test_registry_entry_and_shapes():
    entry = get_model_entry("gpt")
    assert entry.input_kind == "tokens"
    model = tiny()
    assert model(ids(2, 7)).shape == (2, 7, V)
    assert model.features(ids(2, 7)).shape == (2, 7, 32)
    assert isinstance(model.features.blocks, nn.ModuleList) and len(model.features.blocks) == 2


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="multiple of n_head"):
        tiny(n_embd=30, n_head=4)
    with pytest.raises(UserError, match="even head dimension"):
        tiny(n_embd=12, n_head=4)
    tiny(n_embd=12, n_head=4, positions="learned")  # odd head dim is fine without RoPE
    with pytest.raises(UserError, match="token ids"):
        create_model("gpt", input_shape=(1, 8, 8), num_outputs=V)
    with pytest.raises(UserError, match="unknown option"):
        tiny(n_layers=3)


def test_too_long_sequence_is_refused():
    with pytest.raises(ValueError, match="block_size"):
        tiny()(ids(1, BS + 1))


def test_weight_tying():
    tied = tiny()
    assert tied.head.weight.data_ptr() == tied.features.wte.weight.data_ptr()
    untied = tiny(tie_weights=False)
    assert untied.head.weight.data_ptr() != untied.features.wte.weight.data_ptr()
    assert untied.num_params() == tied.num_params() + V * 32


def test_rope_tables_stay_out_of_the_state_dict():
    sd = tiny().state_dict()
    assert not any("rope" in k for k in sd)
    assert "features.wpe.weight" in tiny(positions="learned").state_dict()


def test_rope_matches_transformers_llama():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    from zerotune.models.gpt import apply_rope, rope_tables

    T, hd, base = 12, 16, 500.0
    cfg = LlamaConfig(hidden_size=4 * hd, num_attention_heads=4, rope_theta=base, max_position_embeddings=64)
    q, k = torch.randn(2, 4, T, hd), torch.randn(2, 4, T, hd)
    cos, sin = LlamaRotaryEmbedding(cfg)(q, torch.arange(T)[None])
    ref_q, ref_k = apply_rotary_pos_emb(q, k, cos, sin)
    ours_cos, ours_sin = rope_tables(T, hd, base)
    torch.testing.assert_close(apply_rope(q, ours_cos, ours_sin), ref_q, atol=2e-6, rtol=0)
    torch.testing.assert_close(apply_rope(k, ours_cos, ours_sin), ref_k, atol=2e-6, rtol=0)


def test_rope_scores_depend_only_on_the_distance():
    from zerotune.models.gpt import apply_rope, rope_tables

    hd, shift = 8, 5
    cos, sin = rope_tables(20, hd, 10000.0)
    q, k = torch.randn(hd), torch.randn(hd)

    def score(t, s):  # query at position t, key at position s
        return float(apply_rope(q, cos[t], sin[t]) @ apply_rope(k, cos[s], sin[s]))

    for t, s in [(3, 1), (7, 7), (10, 2)]:
        assert score(t, s) == pytest.approx(score(t + shift, s + shift), abs=1e-5)
    assert score(3, 1) != pytest.approx(score(3, 2), abs=1e-3)


def test_param_groups_cover_each_trainable_parameter_once():
    for kw in ({}, {"bias": True, "positions": "learned"}, {"tie_weights": False}):
        model = tiny(**kw)
        groups = model.param_groups(0.1)
        seen = [p for g in groups for p in g["params"]]
        assert len({id(p) for p in seen}) == len(seen) == len(list(model.parameters()))
        by_name = {g["name"]: g for g in groups}
        assert by_name["decay"]["weight_decay"] == 0.1 and by_name["no_decay"]["weight_decay"] == 0.0
        assert all(p.ndim >= 2 for p in by_name["decay"]["params"])
        assert all(p.ndim < 2 for p in by_name["no_decay"]["params"])
        torch.optim.AdamW(groups, lr=1e-3)  # accepted as is
    model = tiny()
    model.features.requires_grad_(False)
    # the head is tied to the embedding: freezing the features freezes everything
    with pytest.raises(UserError, match="no trainable parameters"):
        model.param_groups(0.1)
    model = tiny(tie_weights=False)
    model.features.requires_grad_(False)
    (only,) = model.param_groups(0.1)
    assert only["params"] == [model.head.weight]


def test_num_params_and_flops():
    C, L, hidden = 32, 2, 128
    per_block = 2 * C + (3 * C * C) + C * C + C * hidden + hidden * C  # 2 LayerNorms (no bias), qkv, proj, mlp
    manual = V * C + L * per_block + C  # tied wte/head + blocks + ln_f
    rope = tiny()
    assert rope.num_params() == rope.num_params(non_embedding=False) == manual
    learned = tiny(positions="learned")
    assert learned.num_params() == manual
    assert learned.num_params(non_embedding=False) == manual + BS * C
    assert rope.flops_per_token() == 6 * manual + 12 * L * C * BS
    assert rope.flops_per_token(seq_len=4) == 6 * manual + 12 * L * C * 4


def test_gpt2_initialisation_survives_default_init():
    torch.manual_seed(0)
    model = create_model("gpt", input_shape=(BS,), num_outputs=V, n_layer=2, n_head=2, n_embd=64)
    b = model.features.blocks[0]
    assert abs(b.attn.qkv.weight.std().item() - 0.02) < 0.002
    assert abs(b.mlp.proj.weight.std().item() - 0.02 / math.sqrt(4)) < 0.001
    assert abs(model.features.wte.weight.std().item() - 0.02) < 0.002


# -- behaviour ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_causality(positions):
    model = tiny(positions=positions).eval()
    x = ids(1)
    t = 9
    y = x.clone()
    y[0, t] = (y[0, t] + 1) % V
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :t], b[:, :t], atol=1e-6, rtol=0)
    assert not torch.allclose(a[:, t], b[:, t])


def test_attention_maps_are_causal_distributions():
    model = tiny()
    model.train()
    maps = model.attention_maps(ids(1, 10))
    assert maps.shape == (2, 2, 10, 10)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, 10))
    assert torch.count_nonzero(maps.triu(1)) == 0
    assert model.training  # mode restored


def test_gradient_reaches_every_parameter():
    for kw in ({}, {"positions": "learned", "bias": True, "tie_weights": False}):
        model = tiny(**kw)
        model(ids(2)).logsumexp(-1).sum().backward()
        for n, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, n


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_cpu_autocast_runs_attention_in_float32(monkeypatch, positions):
    """Under CPU bf16 autocast, SDPA gets float32 inputs (its CPU backward is ~3x slower in bf16),
    also with RoPE, whose float32 tables turn the bf16 queries and keys into float32 ones."""
    seen = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording(q, k, v, *args, **kwargs):
        seen.append((q.dtype, k.dtype, v.dtype, torch.is_autocast_enabled("cpu")))
        return sdpa(q, k, v, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
    model = tiny(positions=positions)
    x = ids(2)
    reference = model(x)
    seen.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    out.logsumexp(-1).sum().backward()
    assert seen == [(torch.float32, torch.float32, torch.float32, False)] * 2  # one call per layer
    assert model.features.blocks[0].attn.qkv.weight.grad is not None
    torch.testing.assert_close(out, reference, atol=0.05, rtol=0.05)  # bf16 matmuls, same model


def test_dropout_only_in_train_mode():
    model = tiny(dropout=0.2)
    x = ids(2)
    model.train()
    assert not torch.allclose(model(x), model(x))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), atol=0, rtol=0)


def test_overfits_a_repeating_text():
    torch.manual_seed(0)
    text = "abcabd" * 8
    vocab = sorted(set(text))
    data = torch.tensor([vocab.index(c) for c in text])
    T = 12
    windows = torch.stack([data[i:i + T + 1] for i in range(6)])  # every phase of the period
    x, y = windows[:, :-1], windows[:, 1:]
    model = create_model("gpt", input_shape=(T,), num_outputs=len(vocab), n_layer=2, n_head=2, n_embd=32)
    opt = torch.optim.AdamW(model.param_groups(0.0), lr=1e-2)
    for _ in range(200):
        logits = model(x)
        # from the third token on, the last three tokens determine the next one
        loss = nn.functional.cross_entropy(logits[:, 2:].reshape(-1, len(vocab)), y[:, 2:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


# -- KV cache ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_cache_gives_the_full_forward_logits(positions):
    model = tiny(positions=positions).eval()
    x = ids(2, BS, seed=1)
    with torch.no_grad():
        full = model(x)
        for chunks in ([5] + [1] * 11, [3, 4, 1, 8], [BS]):
            cache, outs, start = model.new_cache(), [], 0
            for c in chunks:
                outs.append(model(x[:, start:start + c], cache))
                start += c
            assert cache.pos == BS
            torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_a_full_cache_refuses_more_tokens(positions):
    model = tiny(positions=positions).eval()
    cache = model.new_cache()
    with torch.no_grad():
        model(ids(1, BS - 2), cache)
        assert not cache.full
        with pytest.raises(ValueError, match="start a new cache"):
            model(ids(1, 3), cache)
        model(ids(1, 2), cache)
        assert cache.full


# -- export ----------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy (TorchScript) exporter
@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_onnx_export_with_dynamic_batch_and_sequence(tmp_path, positions):
    ort = pytest.importorskip("onnxruntime")
    model = tiny(positions=positions).eval()
    f = tmp_path / "gpt.onnx"
    torch.onnx.export(model, (ids(2, 5),), str(f), dynamo=False, opset_version=17, input_names=["idx"],
                      output_names=["logits"], dynamic_axes={"idx": {0: "batch", 1: "seq"},
                                                             "logits": {0: "batch", 1: "seq"}})
    sess = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
    x = ids(3, 11, seed=4)
    (out,) = sess.run(None, {"idx": x.numpy()})
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_trace_with_another_length():
    model = tiny(positions="learned").eval()
    traced = torch.jit.trace(model, (ids(2, 5),))
    x = ids(3, 9, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), atol=1e-5, rtol=0)
