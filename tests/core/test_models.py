import pytest
import torch

from zerotune.errors import UserError
from zerotune.models import create_model, list_models

SHAPES = {"image": [(1, 8, 8), (3, 32, 32)], "any": [(1, 8, 8), (13,)], "tokens": [(16,)]}


@pytest.mark.parametrize("entry", list_models(), ids=lambda e: e.name)
def test_every_model_runs_forward_and_backward(entry):
    if entry.name == "hf":
        pytest.skip("hf needs a pretrained directory; tests/finetune covers it")
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
