"""The reference of a preference run: LoRA's adapters switched off (no second model), or a full
fine-tune's log-probs cached in the run directory before training (checked on resume)."""

import copy
import json

import pytest
import torch

import zerotune
from zerotune.config import FinetuneConfig, load_config
from zerotune.data.sft import IGNORE
from zerotune.errors import UserError
from zerotune.models.lora import adapters_off, apply_lora
from zerotune.tasks.preference import AdapterReference, pair_logps

BASE = ["data.name=preference", "data.max_length=48", "train.epochs=1", "train.batch_size=8", "train.threads=1",
        "optim.lr=3e-3", "log.progress=false", "log.tensorboard=false", "finetune.baseline=false"]


def _batch(vocab: int, rows: int = 4, width: int = 10):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (rows, width), generator=g)
    labels = torch.full((rows, width), IGNORE)
    labels[:, 4:-1] = ids[:, 5:]
    return ids, labels


def _with_trained_adapters(model):
    apply_lora(model, FinetuneConfig(source="x", strategy="lora", lora_rank=4))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # as if trained: the adapters now change the output
    return model


def _check_reference_is_the_base(base, tuned, vocab):
    ids, labels = _batch(vocab)
    base.eval()
    want = pair_logps(base(ids), labels)
    got = AdapterReference(tuned, torch.device("cpu"))(ids, labels)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    with torch.no_grad():
        tuned.eval()
        assert not torch.allclose(pair_logps(tuned(ids), labels), want, atol=1e-3)  # the adapters do act
        with adapters_off(tuned):
            torch.testing.assert_close(pair_logps(tuned(ids), labels), want, rtol=0, atol=1e-6)
        assert not torch.allclose(pair_logps(tuned(ids), labels), want, atol=1e-3)  # and act again after


def test_lora_reference_of_a_transformers_model_is_the_base_model(tiny_lms):
    from zerotune.models import create_model

    from transformers import AutoConfig

    vocab = AutoConfig.from_pretrained(str(tiny_lms["llama"])).vocab_size
    base = create_model("hf_lm", input_shape=(16,), num_outputs=vocab, path=str(tiny_lms["llama"]))
    _check_reference_is_the_base(base, _with_trained_adapters(copy.deepcopy(base)), vocab)


def test_lora_reference_of_a_zerotune_gpt_is_the_base_model(gpt_run):
    from zerotune.runload.load import load_run

    run = load_run(gpt_run)
    _check_reference_is_the_base(run.model, _with_trained_adapters(copy.deepcopy(run.model)), run.meta.num_outputs)


def _count_models(monkeypatch) -> list:
    import zerotune.runload.load as load

    built, create = [], load.create_model
    monkeypatch.setattr(load, "create_model", lambda *a, **k: built.append(a[0]) or create(*a, **k))
    return built


def test_full_finetune_caches_the_reference_and_builds_no_second_model(tmp_path, gpt_run, pairs_file, sft_file,
                                                                     monkeypatch):
    from zerotune.data.preference_cache import load_reference
    from zerotune.runload.load import load_data, load_run
    from zerotune.tasks.preference import reference_logps

    built = _count_models(monkeypatch)
    cfg = load_config(None, [*BASE, f"data.path={pairs_file}", f"finetune.source={gpt_run}", f"log.dir={tmp_path}",
                             "log.name=full", "finetune.strategy=full", "train.max_steps=4"])
    run_dir = zerotune.train(cfg).run_dir
    preference_builds, built[:] = len(built), []
    sft = [o.replace("data.name=preference", "data.name=sft") for o in BASE]
    zerotune.train(load_config(None, [*sft, f"data.path={sft_file}", f"finetune.source={gpt_run}",
                                      f"log.dir={tmp_path}", "log.name=sft", "finetune.strategy=full",
                                      "train.max_steps=4"]))
    assert preference_builds == len(built)  # the reference adds no model to what a full SFT builds

    cache = run_dir / "reference_logps.safetensors"
    assert cache.is_file()
    data = load_data(load_config(None, [*BASE, f"data.path={pairs_file}", "model.name=gpt"]), gpt_run)
    refs = load_reference(cache, data)
    source = load_run(gpt_run).model
    torch.testing.assert_close(refs["val"], reference_logps(source, data.val, "cpu"), rtol=0, atol=1e-5)
    tuned = json.loads((run_dir / "metrics.json").read_text())
    assert tuned["val"]["rewards/chosen"] != 0  # the tuned model moved away from the cached reference


def test_a_resume_checks_the_cached_reference(tmp_path, gpt_run, pairs_file):
    cfg = load_config(None, [*BASE, f"data.path={pairs_file}", f"finetune.source={gpt_run}", f"log.dir={tmp_path}",
                             "log.name=half", "finetune.strategy=full", "train.max_steps=2",
                             "train.checkpoint_every_steps=1"])
    run_dir = zerotune.train(cfg).run_dir
    cache = run_dir / "reference_logps.safetensors"
    good = cache.read_bytes()
    cache.write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="reference_logps.safetensors is damaged"):
        zerotune.train(None, resume=run_dir, resume_overrides=["train.max_steps=3"])
    cache.unlink()
    with pytest.raises(UserError, match="reference_logps.safetensors is missing"):
        zerotune.train(None, resume=run_dir, resume_overrides=["train.max_steps=3"])
    cache.write_bytes(good)
    assert zerotune.train(None, resume=run_dir, resume_overrides=["train.max_steps=3"]).steps == 3
