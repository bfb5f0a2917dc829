"""Model families and the registry that names them."""

# Importing each family registers it (hf imports transformers only when a model is built).
from . import cnn, gpt, hf, hf_lm, linear, mlp, resnet, vgg  # noqa: F401
from .registry import create_model, get_model_entry, list_models, register_model

__all__ = ["create_model", "get_model_entry", "list_models", "register_model"]
