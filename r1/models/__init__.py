"""Loading policy / reference models and tokenizers by built-in name, hub id or local path."""

from r1.models.loading import BUILTIN_MODELS, ModelLoadError, load_model, load_tokenizer

__all__ = ["BUILTIN_MODELS", "ModelLoadError", "load_model", "load_tokenizer"]
