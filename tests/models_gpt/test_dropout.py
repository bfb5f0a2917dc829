import math

import pytest
import torch

from zerotune.models import create_model
from zerotune.models.dropout import FastDropout, dropout


def drop_fraction(y: torch.Tensor) -> float:
    return (y == 0).float().mean().item()


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drops_p_of_the_elements_in_every_lane_and_keeps_the_mean(p):
    torch.manual_seed(0)
    n = 1 << 22
    y = dropout(torch.ones(n), p)
    sigma = math.sqrt(p * (1 - p) / (n // 4))
    # each 64-bit draw feeds four consecutive elements: every lane must drop p of its elements
    for lane in range(4):
        assert abs(drop_fraction(y[lane::4]) - p) < 5 * sigma, lane
    kept = y[y != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 65536 / (65536 - round(p * 65536))))
    assert abs(y.mean().item() - 1.0) < 5 * math.sqrt(p / (1 - p) / n)


def test_gradient_flows_through_the_kept_elements_only():
    x = torch.randn(64, 33, requires_grad=True)
    y = dropout(x, 0.3)
    y.sum().backward()
    kept = y != 0
    scale = 65536 / (65536 - round(0.3 * 65536))
    torch.testing.assert_close(y[kept], x.detach()[kept] * scale)
    assert torch.equal(x.grad, kept.float() * scale)


def test_masks_follow_the_torch_seed():
    x = torch.ones(5, 7, 11)
    torch.manual_seed(3)
    a = dropout(x, 0.5)
    state = torch.get_rng_state()
    b = dropout(x, 0.5)
    torch.set_rng_state(state)  # what exact resume restores
    assert torch.equal(dropout(x, 0.5), b)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.5), a)
    assert not torch.equal(a, b)


def test_identity_when_off():
    x = torch.randn(4, 9)
    assert dropout(x, 0.0) is x
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 1e-6) is x  # below half a 2**-16 step: nothing is dropped
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    module = FastDropout(0.5).eval()
    assert module(x) is x
    assert isinstance(module, torch.nn.Dropout)


def test_bf16_activations_keep_their_dtype():
    y = dropout(torch.ones(1000, dtype=torch.bfloat16), 0.25)
    assert y.dtype == torch.bfloat16 and 0.15 < drop_fraction(y) < 0.35


@pytest.mark.parametrize("attn_dropout, expected", [(None, 0.2), (0.0, 0.0), (0.05, 0.05)])
def test_attention_dropout_defaults_to_dropout(monkeypatch, attn_dropout, expected):
    seen = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording(q, k, v, *args, dropout_p=0.0, **kwargs):
        seen.append(dropout_p)
        return sdpa(q, k, v, *args, dropout_p=dropout_p, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
    model = create_model("gpt", input_shape=(8,), num_outputs=20, n_layer=2, n_head=2, n_embd=16,
                         dropout=0.2, attn_dropout=attn_dropout)
    x = torch.randint(0, 20, (2, 8))
    model.train()
    model(x)
    assert seen == [expected] * 2
    model.eval()
    seen.clear()
    model(x)
    assert seen == [0.0] * 2
