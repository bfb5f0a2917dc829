"""Language-model inference: sampling and streaming generation with a KV cache."""
