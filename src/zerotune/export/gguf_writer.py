"""A transformers causal LM (Llama, Qwen2) as a GGUF file, llama.cpp's format, written with the ``gguf`` package.

Tensor names come from the package's own map (``gguf.get_tensor_name_map``). llama.cpp computes
Llama's rotary embedding on adjacent pairs of each head's dimensions where transformers rotates its
two halves, so Llama's q and k rows are permuted within each head (k per key-value head) to match;
Qwen2 files keep transformers' order. One-dimensional tensors (norms, biases) stay float32, as
llama.cpp's own converter keeps them; matrices are float16 or Q8_0 (blocks of 32 values with one
scale), and a matrix whose rows are not a multiple of 32 long stays float16 in a Q8_0 file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError

QUANTS = ("f16", "q8_0")
ARCHITECTURES = ("llama", "qwen2")


def check_quant(quant: str) -> None:
    if quant not in QUANTS:
        raise UserError(f"GGUF quantization {quant!r} is unknown; allowed: {', '.join(QUANTS)}")


def check_architecture(config) -> None:
    """Refuse what the writer cannot describe: another architecture, or rotary scaling."""
    kind = getattr(config, "model_type", None)
    if kind not in ARCHITECTURES:
        raise UserError(f"the GGUF writer takes {' and '.join(ARCHITECTURES)} causal LMs; this run's model is "
                        f"{kind!r} (export it with --format hf or onnx)")
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise UserError(f"the GGUF writer takes plain rotary embeddings; this model uses {rope['rope_type']!r} "
                        "scaling (export it with --format hf)")


def write_gguf(path: Path, model, tokenizer, tokenizer_dir: Path, quant: str, answer_end: int | None,
               chat_template: str, name: str) -> None:
    """Write `model` (plain, float32) and its tokenizer to the GGUF file `path`.

    Args:
        path: the file to write (the caller renames it into place once checked).
        model: a transformers Llama or Qwen2 causal LM.
        tokenizer: its tokenizer; ``tokenizer_dir`` holds its files (merges, special tokens).
        quant: "f16" or "q8_0".
        answer_end: the token an answer ends with (the file's eos and end-of-turn id).
        chat_template: the Jinja template prompts are formatted with.
        name: the model's name in the file (``general.name``).
    """
    import gguf

    from .gguf_vocab import add_vocab

    check_quant(quant)
    config = model.config
    check_architecture(config)
    writer = gguf.GGUFWriter(str(path), config.model_type)
    writer.add_name(name)
    _add_architecture(writer, config, quant)
    add_vocab(writer, tokenizer, tokenizer_dir, config.vocab_size, answer_end, chat_template)
    for name, array, kind in _tensors(model, quant):
        writer.add_tensor(name, array, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _add_architecture(writer, config, quant: str) -> None:
    import gguf

    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    rope = getattr(config, "rope_parameters", None) or {}
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if quant == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _tensors(model, quant: str):
    """(GGUF name, array, GGML type) of every weight; the output matrix is left out when tied to the embedding."""
    import gguf

    config = model.config
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == config.model_type)
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    tied = getattr(config, "tie_word_embeddings", False)
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise UserError(f"the GGUF writer has no name for the tensor {hf_name!r} of this {config.model_type} model")
        array = tensor.detach().float().cpu().numpy()
        if config.model_type == "llama" and name.endswith(("attn_q.weight", "attn_k.weight")):
            heads = config.num_attention_heads
            if name.endswith("attn_k.weight"):
                heads = getattr(config, "num_key_value_heads", None) or heads
            array = _rotary_pairs(array, heads)
        yield (name, *_encoded(array, quant))


def _rotary_pairs(w: np.ndarray, heads: int) -> np.ndarray:
    """Rows of each head reordered from transformers' (first half, second half) to llama.cpp's interleaved pairs."""
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _encoded(array: np.ndarray, quant: str):
    """(data, GGML type): vectors in float32, matrices in float16 or Q8_0 (float16 when rows don't split in 32s)."""
    import gguf

    if array.ndim < 2:
        return array.astype(np.float32), gguf.GGMLQuantizationType.F32
    if quant == "q8_0" and array.shape[-1] % gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0] == 0:
        kind = gguf.GGMLQuantizationType.Q8_0
        return gguf.quants.quantize(array, kind), kind
    return array.astype(np.float16), gguf.GGMLQuantizationType.F16
