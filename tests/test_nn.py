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


def test_cpu_attention_equals_scaled_dot_product_attention():
    from diffad.nn.layers import attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(7, 2, 11, 4, generator=g) for _ in range(3))
    assert torch.allclose(
        attention(q, k, v), torch.nn.functional.scaled_dot_product_attention(q, k, v), atol=1e-6
    )


def test_chunked_attention_equals_one_call():
    # the CUDA kernels take at most 65,535 sequences a call; the chunks must join up exactly
    from diffad.nn.layers import chunked_sdpa

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(10, 1, 5, 4, generator=g) for _ in range(3))
    whole = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert torch.allclose(chunked_sdpa(q, k, v, 3), whole, atol=1e-6)
    assert torch.equal(chunked_sdpa(q, k, v, 10), whole)


def test_channels_last_network_keeps_the_conv_parameter_shapes():
    # model folders written before the network ran channels-last stay loadable
    net = _net()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes["input_proj.weight"] == (8, 2, 1) and shapes["blocks.0.mid_proj.weight"] == (16, 8, 1)
