"""Model families and the registry that names them."""

from .registry import create_model, get_model_entry, list_models, register_model

__all__ = ["create_model", "get_model_entry", "list_models", "register_model"]
