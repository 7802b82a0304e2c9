"""Networks of the image generator: the diffusion prior, the anomaly conditioner, the mask model and
the downstream segmenter. The prior and the mask model are diffusers UNets; the conditioner's mask
encoder and the segmenter are small convolutional networks written here (nothing in diffusers is a
plain encoder or a timestep-free segmentation U-Net)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import check_option, fail

__all__ = [
    "ImageGenConfig",
    "PriorCondition",
    "AnomalyConditioner",
    "Segmenter",
    "build_prior",
    "build_mask_model",
    "make_scheduler",
]


# how the mask becomes the spatial embedding e_s (see AnomalyConditioner)
SPATIAL_EMBEDDINGS = ("encoder", "typed", "layout")
# how the anomaly stage averages its loss over mask pixels (see AnomalyDiffusion.fit_anomaly)
ANOMALY_LOSSES = ("pixel", "defect")
# settings that act only when sampling, so they may change on a trained model
SAMPLING_SETTINGS = ("sample_steps", "mask_sample_steps", "resample", "guidance")


@dataclass
class ImageGenConfig:
    """Sizes and training budgets. The defaults are the CPU configuration measured in
    docs/benchmarks.md (32 x 32 images, about 1.7 M prior parameters). ``spatial_embedding``: what
    the mask encoder reads, ``"encoder"`` (the mask: the paper's split), ``"typed"`` (the mask and
    the anomaly type) or ``"layout"`` (the mask, on top of the edited image's own layout tokens with a
    learned per-type change where the mask lies), see :class:`AnomalyConditioner`.
    ``anomaly_loss``: how the anomaly stage averages its loss, ``"pixel"`` (over every mask pixel of
    the batch, so large defects weigh more) or ``"defect"`` (over each defect's own pixels, then over
    the defects, so thin scratches and cuts weigh as much as large holes), see
    :meth:`AnomalyDiffusion.fit_anomaly`.
    ``anomaly_shift``: the anomaly stage moves each few-shot defect (image and mask together) by up to
    this many pixels in each direction at every draw (0: defects stay where they are).
    ``resample``: each sampling step runs this many times, the result re-noised back to the step's
    noise level between runs (RePaint's resampling, Lugmayr et al. 2022), so the painted region
    settles with the kept background (1: the plain blended DDIM chain). ``guidance``: classifier-free
    guidance scale s, eps = eps_ref + s (eps_anomaly - eps_ref), where eps_ref is the prior's prediction
    with its own condition of the edited normal image (1: the anomaly condition alone, no extra pass).
    The sampling settings (:data:`SAMPLING_SETTINGS`) can change on a trained model."""

    size: int = 32
    prior_channels: tuple[int, ...] = (32, 64, 64)
    mask_channels: tuple[int, ...] = (16, 32, 32)
    cross_dim: int = 64
    head_dim: int = 8
    n_normal_tokens: int = 2
    n_anomaly_tokens: int = 4
    layout_dropout: float = 0.3
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prior_steps: int = 1500
    anomaly_steps: int = 600
    mask_steps: int = 1500
    batch_size: int = 32
    prior_lr: float = 1e-3
    anomaly_lr: float = 5e-3
    mask_lr: float = 1e-3
    sample_steps: int = 25
    mask_sample_steps: int = 50
    spatial_embedding: str = "encoder"
    anomaly_loss: str = "pixel"
    anomaly_shift: int = 0
    resample: int = 1
    guidance: float = 1.0

    def __post_init__(self):
        self.prior_channels = tuple(int(c) for c in self.prior_channels)
        self.mask_channels = tuple(int(c) for c in self.mask_channels)
        down = 2 ** (len(self.prior_channels) - 1)
        if self.size < 8 or self.size % max(down, 8):
            raise fail(
                "image size",
                f"a multiple of {max(down, 8)} (>= 8)",
                repr(self.size),
                "The UNets halve the resolution at every level; pick e.g. 16, 32 or 64.",
            )
        if self.cross_dim % self.head_dim:
            raise fail(
                "cross_dim",
                f"a multiple of head_dim={self.head_dim}",
                repr(self.cross_dim),
                "Adjust one of them.",
            )
        check_option(self.spatial_embedding, SPATIAL_EMBEDDINGS, name="spatial_embedding")
        check_option(self.anomaly_loss, ANOMALY_LOSSES, name="anomaly_loss")
        if not 0 <= int(self.anomaly_shift) < self.size // 2:
            raise fail(
                "anomaly_shift",
                f"an integer from 0 to {self.size // 2 - 1}",
                repr(self.anomaly_shift),
                "Move defects by less than half the image.",
            )
        if not self.guidance >= 0.0:
            raise fail(
                "guidance",
                "a scale >= 0 (1: no guidance, 0: the prior's view of the normal image)",
                repr(self.guidance),
                "Use 1 for none, more for stronger defects.",
            )
        for name in (
            "prior_steps",
            "anomaly_steps",
            "mask_steps",
            "batch_size",
            "sample_steps",
            "mask_sample_steps",
            "resample",
        ):
            if int(getattr(self, name)) < 1:
                raise fail(name, "a positive integer", repr(getattr(self, name)), "Use at least 1.")

    def with_sampling(self, changes: dict) -> ImageGenConfig:
        """A copy with the sampling settings in ``changes`` changed; any other key is refused (it needs
        retraining)."""
        other = sorted(set(changes) - set(SAMPLING_SETTINGS))
        if other:
            raise fail(
                "sampling settings",
                f"keys among {list(SAMPLING_SETTINGS)}",
                repr(other),
                "Change only the sampling settings on a trained model; the others need retraining (train-prior / train-anomaly --set KEY=VALUE).",
            )
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> ImageGenConfig:
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - valid)
        if unknown:
            raise fail(
                "image generator settings",
                f"keys among {sorted(valid)}",
                repr(unknown),
                "Remove or rename them.",
            )
        return cls(**d)

    @classmethod
    def tiny(cls, size: int = 16) -> ImageGenConfig:
        """A few-second configuration for tests."""
        return cls(
            size=size,
            prior_channels=(16, 32),
            mask_channels=(8, 16),
            cross_dim=16,
            head_dim=8,
            prior_steps=4,
            anomaly_steps=4,
            mask_steps=4,
            batch_size=4,
            sample_steps=3,
            mask_sample_steps=3,
        )

    @property
    def grid(self) -> int:
        """Side of the spatial-embedding grid: one token per 8 x 8 pixel cell."""
        return self.size // 8


def build_prior(cfg: ImageGenConfig):
    """Conditional UNet (diffusers ``UNet2DConditionModel``): plain ResNet blocks at full resolution,
    cross-attention transformer blocks at every lower resolution."""
    from diffusers import UNet2DConditionModel

    n = len(cfg.prior_channels)
    down = ("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1)
    up = ("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",)
    return UNet2DConditionModel(
        sample_size=cfg.size,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=cfg.prior_channels,
        down_block_types=down,
        up_block_types=up,
        cross_attention_dim=cfg.cross_dim,
        attention_head_dim=cfg.head_dim,
        norm_num_groups=min(8, cfg.prior_channels[0]),
    )


def build_mask_model(cfg: ImageGenConfig, n_kinds: int):
    """Class-conditional UNet (diffusers ``UNet2DModel``) over one-channel masks, one class per
    anomaly type."""
    from diffusers import UNet2DModel

    n = len(cfg.mask_channels)
    return UNet2DModel(
        sample_size=cfg.size,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=cfg.mask_channels,
        down_block_types=("DownBlock2D",) * n,
        up_block_types=("UpBlock2D",) * n,
        num_class_embeds=n_kinds,
        norm_num_groups=min(8, cfg.mask_channels[0]),
    )


def make_scheduler(cfg: ImageGenConfig, kind: str = "ddpm"):
    """The training (DDPM) or sampling (DDIM) scheduler of diffusers on the configured noise schedule."""
    from diffusers import DDIMScheduler, DDPMScheduler

    if kind == "ddim":
        # "trailing" spacing starts the chain at the last training step (pure noise), where the
        # default "leading" spacing starts it a stride earlier
        return DDIMScheduler(
            num_train_timesteps=cfg.train_timesteps,
            beta_schedule=cfg.beta_schedule,
            clip_sample=True,
            set_alpha_to_one=True,
            timestep_spacing="trailing",
        )
    return DDPMScheduler(
        num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule, clip_sample=True
    )


def cell_descriptors(x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per 8 x 8 cell of images ``x`` (B, 3, H, W), the channel means and standard deviations,
    (B, cells, 6). With ``weight`` (B, 1, H, W) in [0, 1] they are weighted statistics; a cell of zero
    weight takes those of the image's whole weighted area."""
    if weight is None:
        mean = F.avg_pool2d(x, 8)
        sq = F.avg_pool2d(x * x, 8)
    else:
        w = F.avg_pool2d(weight, 8)
        total = weight.sum((2, 3), keepdim=True).clamp_min(1e-6)
        whole_mean = (weight * x).sum((2, 3), keepdim=True) / total
        whole_sq = (weight * x * x).sum((2, 3), keepdim=True) / total
        empty = w <= 1e-6
        mean = torch.where(empty, whole_mean, F.avg_pool2d(weight * x, 8) / w.clamp_min(1e-6))
        sq = torch.where(empty, whole_sq, F.avg_pool2d(weight * x * x, 8) / w.clamp_min(1e-6))
    std = (sq - mean * mean).clamp_min(0).sqrt()
    return torch.cat([mean, std], dim=1).flatten(2).transpose(1, 2)


class PriorCondition(nn.Module):
    """The prior's cross-attention condition: ``n_normal_tokens`` learned "normal" tokens followed by
    one *layout token* per 8 x 8 cell of the image, a linear map of the cell's channel means and
    standard deviations plus a learned position embedding.

    A pretrained latent diffusion model arrives with a cross-attention path that follows its text
    condition, which is what lets a few learned tokens steer it. A prior trained here on normal
    images with a constant condition would have no such path (its cross-attention would learn a
    constant bias). Describing each training image by its own coarse layout gives the prior a
    cross-attention path that places appearance where the tokens say; the anomaly stage then fills the
    layout slots with the spatial embedding ``e_s`` and adds the anomaly tokens ``e_a``. With
    probability ``layout_dropout`` the descriptors of a training image are zeroed (only the position
    embedding is left), so the prior also generates without a layout.
    """

    def __init__(self, cfg: ImageGenConfig):
        super().__init__()
        d = cfg.cross_dim
        self.normal = nn.Parameter(torch.randn(cfg.n_normal_tokens, d) * 0.02)
        self.describe = nn.Linear(6, d)
        self.position = nn.Parameter(torch.randn(cfg.grid * cfg.grid, d) * 0.02)

    def layout(self, x0: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Layout tokens (B, grid^2, d) of clean images ``x0`` (B, 3, H, W); ``keep`` (B,) bool zeroes
        the descriptors where False."""
        desc = cell_descriptors(x0)
        if keep is not None:
            desc = desc * keep.to(desc.dtype)[:, None, None]
        return self.describe(desc) + self.position

    def forward(self, x0: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        normal = self.normal.expand(x0.shape[0], -1, -1)
        return torch.cat([normal, self.layout(x0, keep)], dim=1)


class AnomalyConditioner(nn.Module):
    """The anomaly condition ``[e_n, e_a, e_s]``.

    ``e_n``: the prior's normal tokens (frozen); ``e_a``: ``n_anomaly_tokens`` learned
    anomaly-embedding tokens per anomaly type (textual-inversion style); ``e_s``: the spatial
    embedding, one token per 8 x 8 cell of the mask, from a three-layer strided CNN plus the prior's
    (frozen) layout position embedding, so ``e_s`` takes the place of the layout tokens the prior was
    trained with (the paper uses ResNet-50 + FPN features of the mask).

    ``cfg.spatial_embedding``: ``"encoder"`` (the paper's split) gives the CNN the mask alone;
    ``"typed"`` also gives it the anomaly type (one channel per type, the mask where the type is the
    sample's, zero elsewhere), so the spatial tokens can carry each type's appearance. ``"layout"``
    anchors ``e_s`` on the path the prior already follows: the layout tokens of the image being edited
    (its cell statistics outside the mask, through the prior's frozen ``describe`` map), with the
    cell descriptors moved by a learned per-type shift in proportion to the cell's mask cover, plus the
    CNN's mask features (their last layer starts at zero, so the stage starts from the prior's own
    condition of the image). The edited image is the defective image in training and the normal image
    at generation; with its defect pixels left out of the statistics, both give the same kind of base.
    """

    def __init__(self, cfg: ImageGenConfig, n_kinds: int, prior_condition: PriorCondition):
        super().__init__()
        d = cfg.cross_dim
        self.normal_tokens: torch.Tensor
        self.position: torch.Tensor
        self.register_buffer("normal_tokens", prior_condition.normal.detach().clone())
        self.register_buffer("position", prior_condition.position.detach().clone())
        self.anomaly = nn.Parameter(torch.randn(n_kinds, cfg.n_anomaly_tokens, d) * 0.02)
        self.type_channels = n_kinds if cfg.spatial_embedding == "typed" else 0
        self.encoder = nn.Sequential(
            nn.Conv2d(1 + self.type_channels, 16, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(32, d, 3, stride=2, padding=1),
        )
        self.n_normal = self.normal_tokens.shape[0]
        self.n_anomaly = cfg.n_anomaly_tokens
        self.anchored = cfg.spatial_embedding == "layout"
        if self.anchored:
            describe: nn.Linear = prior_condition.describe
            self.describe_weight: torch.Tensor
            self.describe_bias: torch.Tensor
            self.register_buffer("describe_weight", describe.weight.detach().clone())
            self.register_buffer("describe_bias", describe.bias.detach().clone())
            self.shift = nn.Parameter(torch.zeros(n_kinds, describe.weight.shape[1]))
            last: nn.Conv2d = self.encoder[-1]  # type: ignore[assignment]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)  # type: ignore[arg-type]  # Conv2d has a bias by default

    @property
    def anomaly_slice(self) -> slice:
        """Positions of the anomaly tokens (``e_a`` and ``e_s``) in the condition."""
        return slice(self.n_normal, self.n_normal + self.n_anomaly + self.position.shape[0])

    def forward(
        self, kind: torch.Tensor, mask: torch.Tensor, image: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``kind`` (B,) type indices, ``mask`` (B, 1, H, W) in {0, 1}, ``image`` (B, 3, H, W) in
        [-1, 1] the image being edited (read only by the ``"layout"`` embedding) -> condition (B, T, d)."""
        h = mask * 2 - 1
        if self.type_channels:
            h = torch.cat(
                [h, F.one_hot(kind, self.type_channels).to(mask.dtype)[:, :, None, None] * mask], dim=1
            )
        spatial = self.encoder(h).flatten(2).transpose(1, 2) + self.position
        if self.anchored:
            if image is None or image.shape[0] != mask.shape[0]:
                raise fail(
                    "image",
                    "the images being edited, one per mask (spatial_embedding='layout' reads them)",
                    "none" if image is None else f"{image.shape[0]} images for {mask.shape[0]} masks",
                    "Pass image= to the conditioner.",
                )
            cover = F.avg_pool2d(mask, 8).flatten(2).transpose(1, 2)  # (B, cells, 1)
            desc = cell_descriptors(image, 1 - mask) + cover * self.shift[kind][:, None, :]
            spatial = spatial + F.linear(desc, self.describe_weight, self.describe_bias)
        normal = self.normal_tokens.expand(mask.shape[0], -1, -1)
        return torch.cat([normal, self.anomaly[kind], spatial], dim=1)


class _ConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.GroupNorm(min(8, cout), cout),
            nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.GroupNorm(min(8, cout), cout),
            nn.SiLU(),
        )


class Segmenter(nn.Module):
    """A small U-Net (two poolings) that maps an image (B, 3, H, W) to defect logits (B, 1, H, W):
    the downstream inspection model of the evaluation."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.e1, self.e2, self.e3 = _ConvBlock(3, w), _ConvBlock(w, 2 * w), _ConvBlock(2 * w, 4 * w)
        self.u2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.d2 = _ConvBlock(4 * w, 2 * w)
        self.u1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.d1 = _ConvBlock(2 * w, w)
        self.head = nn.Conv2d(w, 1, 1)
        self.pool = nn.MaxPool2d(2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck features (B, 4 * width, H / 4, W / 4)."""
        return self.e3(self.pool(self.e2(self.pool(self.e1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.e1(x)
        b = self.e2(self.pool(a))
        c = self.e3(self.pool(b))
        y = self.d2(torch.cat([self.u2(c), b], dim=1))
        y = self.d1(torch.cat([self.u1(y), a], dim=1))
        return self.head(y)
