"""Networks only; they know nothing of noise schedules."""

from .imtransformer import ImTransformer, ImTransformerConfig

__all__ = ["ImTransformer", "ImTransformerConfig"]
