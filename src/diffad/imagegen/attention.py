"""Adaptive attention re-weighting, as a diffusers attention processor.

At each sampling step the generator computes, from the current clean-image estimate ``x0`` and the
normal image ``y`` being edited, the weight map

    w_m = m * Softmax_m(-f_m((y * m - x0 * m) ** 2)) * |m|

(``f_m`` flattens the per-pixel squared error summed over channels; ``Softmax_m`` runs over the mask
pixels; ``|m|`` is their number). The weights average 1 over the mask and are 0 outside it. Mask pixels
that still look like the normal image (small error) get a weight above 1, pixels already turned into a
defect get less: "regions not yet filled get more generation strength", the paper's stated aim. Two
choices are ours and deliberate: the error enters with a minus sign (the formula as usually written,
``Softmax(f_m(error))``, would favour the pixels that are *already* changed, the opposite of that aim),
and the factor ``|m|`` (without it the weights are of order ``1 / |m|`` and multiplying attention maps by
them switches the anomaly tokens off). The processor multiplies the cross-attention maps of the
anomaly tokens by ``w_m`` (at lower resolutions: the mean of ``w_m`` over the mask pixels of each
cell) and leaves the maps of all other
tokens unchanged. With no weights set it computes plain attention.

Outside the mask ``w_m`` is 0: the anomaly tokens are switched off there. That part, more than the
adaptive weights inside the mask, is what makes generated defects stronger than without re-weighting
(docs/benchmarks.md). ``ReweightState.outside`` sets a per-sample weight for the anomaly tokens in
cells without mask pixels instead (0: the formula above; 1: no suppression outside the mask), which
:meth:`~diffad.imagegen.AnomalyDiffusion.calibrate_reweighting` chooses per anomaly type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = ["ReweightState", "ReweightAttnProcessor", "attention_weights", "install_reweighting"]


@dataclass
class ReweightState:
    """Shared by the processors of one UNet. ``weights`` (B, 1, H, W) or None (plain attention);
    ``tokens`` the slice of anomaly-token positions in the condition; ``outside`` (B,) or None (all 0):
    the weight of the anomaly tokens in cells without mask pixels; ``record`` keeps the attention
    maps of the last call of every layer in ``maps`` (before and after re-weighting), for inspection."""

    tokens: slice = field(default_factory=lambda: slice(0, 0))
    weights: torch.Tensor | None = None
    outside: torch.Tensor | None = None
    image_shape: tuple[int, int] = (1, 1)
    record: bool = False
    maps: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


def attention_weights(normal: torch.Tensor, x0: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
    """``w_m`` for a batch: ``normal`` and ``x0`` (B, C, H, W), ``mask`` (B, 1, H, W) in {0, 1}. With
    ``x0`` None (first step, no estimate yet) the weights are the mask itself."""
    if x0 is None:
        return mask.clone()
    err = ((normal * mask - x0 * mask) ** 2).sum(dim=1, keepdim=True)  # (B, 1, H, W)
    inside = mask.flatten(1) > 0
    logits = (-err.flatten(1)).masked_fill(~inside, float("-inf"))
    w = torch.softmax(logits, dim=1).nan_to_num(0.0)  # an empty mask gives all -inf: weights 0
    area = inside.sum(dim=1, keepdim=True).to(w.dtype)
    return (w * area).view_as(err)


class ReweightAttnProcessor:
    """Cross-attention with the anomaly tokens' maps multiplied by the state's weight map."""

    def __init__(self, state: ReweightState):
        self.state = state

    def _layer_weights(self, n_query: int, batch: int, heads: int) -> torch.Tensor:
        H, W = self.state.image_shape
        h = int(round(math.sqrt(n_query * H / W)))
        w = n_query // h
        if h * w != n_query:
            raise ValueError(f"cannot map {n_query} query positions onto a {H}x{W} image grid")
        weights = self.state.weights
        assert weights is not None  # the processors re-weight only when weights are set
        if weights.shape[0] != batch:
            raise ValueError(f"re-weighting map batch {weights.shape[0]} != attention batch {batch}")
        # mean weight over the mask pixels of each cell (0 for cells without any): plain average
        # pooling would dilute thin masks (a one-pixel line covers a quarter of a 2 x 2 cell)
        support = F.adaptive_avg_pool2d((weights > 0).to(weights.dtype), (h, w))
        pooled = F.adaptive_avg_pool2d(weights, (h, w)) / support.clamp_min(1e-12)
        if self.state.outside is not None:
            outside = self.state.outside.to(pooled.dtype).view(-1, 1, 1, 1)
            pooled = torch.where(support > 0, pooled, outside.expand_as(pooled))
        return pooled.flatten(1).repeat_interleave(
            heads, dim=0
        )  # the (B * heads) layout of head_to_batch_dim

    def __call__(
        self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs
    ):
        if hidden_states.ndim != 3 or attn.group_norm is not None or attn.spatial_norm is not None:
            raise ValueError(
                "ReweightAttnProcessor supports the plain (B, N, C) attention of transformer blocks"
            )
        residual = hidden_states
        batch = hidden_states.shape[0]
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(context))
        v = attn.head_to_batch_dim(attn.to_v(context))
        probs = attn.get_attention_scores(q, k, None)  # (B * heads, N, T)
        cross = encoder_hidden_states is not None
        if cross and self.state.weights is not None and self.state.tokens.stop > self.state.tokens.start:
            before = probs
            w = self._layer_weights(probs.shape[1], batch, attn.heads).to(probs.dtype)
            scale = torch.ones_like(probs)
            scale[:, :, self.state.tokens] = w[:, :, None]
            probs = probs * scale
            if self.state.record:
                self.state.maps.append((before.detach(), probs.detach()))
        out = attn.batch_to_head_dim(torch.bmm(probs, v))
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def install_reweighting(unet, state: ReweightState) -> None:
    """Give every cross-attention layer (``attn2``) of ``unet`` a :class:`ReweightAttnProcessor` on
    ``state``; self-attention keeps the default processor."""
    procs = {}
    for name, proc in unet.attn_processors.items():
        procs[name] = ReweightAttnProcessor(state) if name.endswith("attn2.processor") else proc
    unet.set_attn_processor(procs)
