"""diffad.nn: the ImTransformer's shapes, its zero-initialised output and its ablation switches."""

import torch

from diffad.nn import ImTransformer, ImTransformerConfig
from diffad.training import seeded


def _net(**kw):
    with seeded(0):
        return ImTransformer(
            ImTransformerConfig(
                n_features=3,
                n_blocks=2,
                channels=8,
                heads=2,
                ff_dim=16,
                diffusion_embedding_dim=16,
                time_embedding_dim=8,
                feature_embedding_dim=4,
                **kw,
            )
        )


def test_shapes_and_zero_output_at_initialisation():
    net = _net()
    x, cond = torch.randn(5, 2, 3, 12), torch.ones(5, 3, 12)
    out = net(x, cond, torch.tensor([0, 1, 2, 3, 4]), torch.tensor([0, 1, 0, 1, 0]))
    assert out.shape == (5, 3, 12) and torch.all(out == 0)  # the output projection starts at zero, as in CSDI


def test_switches_change_the_network():
    x, cond, t, p = torch.randn(2, 2, 3, 12), torch.ones(2, 3, 12), torch.tensor([1, 2]), torch.tensor([0, 1])
    outs = {}
    for name, kw in {
        "both": {},
        "no temporal": dict(temporal=False),
        "no spatial": dict(spatial=False),
    }.items():
        net = _net(**kw)
        torch.nn.init.normal_(net.output_proj.weight, generator=torch.Generator().manual_seed(1))
        outs[name] = net(x, cond, t, p)
    assert not torch.equal(outs["both"], outs["no temporal"]) and not torch.equal(
        outs["both"], outs["no spatial"]
    )
    assert sum(p.numel() for p in _net(temporal=False).parameters()) < sum(
        p.numel() for p in _net().parameters()
    )
