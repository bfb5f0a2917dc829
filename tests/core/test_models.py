import pytest
import torch

from zerotune.errors import UserError
from zerotune.models import create_model, list_models

SHAPES = {"image": [(1, 8, 8), (3, 32, 32)], "any": [(1, 8, 8), (13,)], "tokens": [(16,)]}


@pytest.mark.parametrize("entry", list_models(), ids=lambda e: e.name)
def test_every_model_runs_forward_and_backward(entry):
    if entry.name in ("hf", "hf_lm"):
        pytest.skip(f"{entry.name} needs a pretrained directory; tests/finetune and tests/sft cover it")
    for shape in SHAPES[entry.input_kind]:
        model = create_model(entry.name, input_shape=shape, num_outputs=5)
        tokens = entry.input_kind == "tokens"  # token ids in, one prediction per position out
        x = torch.randint(0, 5, (4, *shape)) if tokens else torch.randn(4, *shape)
        out = model(x)
        assert out.shape == ((4, *shape, 5) if tokens else (4, 5))
        out.sum().backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        feats = model.features(x)  # every model exposes penultimate features and a head
        assert torch.allclose(model.head(feats), out, atol=1e-5) or model.training


@pytest.mark.parametrize("scheme, check", [
    ("normal", lambda w, fi, fo: abs(w.std().item() - 0.02) < 0.003),
    ("xavier", lambda w, fi, fo: abs(w.std().item() - (2 / (fi + fo)) ** 0.5) < 0.1 * (2 / (fi + fo)) ** 0.5),
    ("he", lambda w, fi, fo: abs(w.std().item() - (2 / fi) ** 0.5) < 0.1 * (2 / fi) ** 0.5),
])
def test_init_schemes_give_their_standard_deviation(scheme, check):
    torch.manual_seed(0)
    model = create_model("mlp", input_shape=(400,), num_outputs=10, init=scheme, hidden=[300])
    w = model.features[1].weight
    assert check(w, 400, 300)
    assert torch.count_nonzero(model.head.bias) == 0


def test_image_model_on_table_data_is_refused():
    with pytest.raises(UserError, match="needs image input"):
        create_model("resnet", input_shape=(13,), num_outputs=3)


def test_cnn_refuses_images_too_small_for_its_pooling():
    with pytest.raises(UserError, match="too small"):
        create_model("cnn", input_shape=(1, 2, 2), num_outputs=3, channels=[8, 8, 8, 8])


def test_mlp_options():
    model = create_model("mlp", input_shape=(10,), num_outputs=2, hidden=[8], dropout=0.5, batch_norm=True,
                         activation="tanh")
    kinds = [type(m).__name__ for m in model.features]
    assert kinds == ["Flatten", "Linear", "BatchNorm1d", "Tanh", "Dropout"]


@pytest.mark.parametrize("name, gain", [("relu", 2**0.5), ("leaky_relu", (2 / (1 + 0.01**2)) ** 0.5), ("silu", 1.6768)])
@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_activation_options_build_and_he_init_uses_their_gain(model_name, name, gain):
    torch.manual_seed(0)
    shape = (400,) if model_name == "mlp" else (16, 8, 8)
    model = create_model(model_name, input_shape=shape, num_outputs=10, init="he", activation=name,
                         **({"hidden": [300]} if model_name == "mlp" else {"channels": [64, 32]}))
    kind = {"relu": torch.nn.ReLU, "leaky_relu": torch.nn.LeakyReLU, "silu": torch.nn.SiLU}[name]
    acts = [m for m in model.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.SiLU))]
    assert acts and all(type(m) is kind for m in acts)
    w = next(m.weight for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)))
    fan_in = w[0].numel()  # 400 inputs, or 16 channels x 3 x 3
    assert abs(w.std().item() - gain / fan_in**0.5) < 0.05 * gain / fan_in**0.5


def test_silu_gain_keeps_unit_second_moment():
    from zerotune.models.activations import SILU_GAIN

    z = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs((torch.nn.functional.silu(z) ** 2).mean().item() * SILU_GAIN**2 - 1) < 0.01


@pytest.mark.parametrize("model_name, activation", [("mlp", "leaky_relu"), ("cnn", "silu")])
def test_new_activations_train_on_digits(tmp_path, model_name, activation):
    import zerotune
    from zerotune.config import load_config

    sets = ["data.name=digits", f"model.name={model_name}", f"model.activation={activation}", "model.init=he",
            "train.epochs=3", "log.tensorboard=false", "log.progress=false", f"log.dir={tmp_path}"]
    if model_name == "cnn":
        sets += ["model.channels=[8,16]", "model.dense=32"]
    result = zerotune.train(load_config(None, sets))
    assert result.metrics["test"]["accuracy"] > 0.85


def test_unknown_activation_is_one_line_error():
    from zerotune.config import load_config

    with pytest.raises(UserError, match="activation.*leaky_relu.*silu"):
        load_config(None, ["model.name=cnn", "model.activation=swish"])
