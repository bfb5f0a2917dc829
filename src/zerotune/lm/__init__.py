"""Language-model inference: sampling, and generation from a run directory with a KV cache."""
