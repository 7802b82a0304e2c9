"""Few-shot anomaly image generation: data, attention re-weighting, blending, determinism, CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from diffad import NotFittedError, PersistenceError

pytest.importorskip("diffusers", reason='diffad.imagegen needs the image extra: pip install "diffad[image]"')

from diffad.data import load_images  # noqa: E402
from diffad.data.synthetic import FAINT_CONTRAST, IMAGE_DEFECT_KINDS, make_defect_images  # noqa: E402
from diffad.exceptions import DataValidationError  # noqa: E402
from diffad.imagegen import (  # noqa: E402
    AnomalyDiffusion,
    ImageGenConfig,
    ReweightState,
    attention_weights,
    install_reweighting,
)
from diffad.imagegen.data import few_shot_split  # noqa: E402
from diffad.imagegen.evaluate import (  # noqa: E402
    crop_paste,
    defect_contrast,
    mask_fill,
    nearest_mask_iou,
    pixel_metrics,
    signed_contrast_by_kind,
)
from diffad.imagegen.generator import shifted, to_unit  # noqa: E402

SIZE = 16


@pytest.fixture(scope="module")
def split():
    return few_shot_split(make_defect_images(n_normal=24, n_per_kind=4, size=SIZE, n_good_test=2, seed=3))


def _accept_any_mask(gen: AnomalyDiffusion) -> None:
    """A few-step mask model draws noise; widen the area check so that the plumbing can be tested."""
    gen.mask_areas_ = {k: (1.0, float(SIZE * SIZE)) for k in gen.kinds_}


@pytest.fixture(scope="module")
def fitted(split):
    gen = AnomalyDiffusion(ImageGenConfig.tiny(SIZE), seed=0)
    gen.fit(split.normal, split.train_images, split.train_masks, split.train_kinds)
    _accept_any_mask(gen)
    return gen


# ------------------------------------------------------------------------------------------- data
def test_defect_images_are_deterministic_and_labelled():
    a = make_defect_images(n_normal=5, n_per_kind=3, size=24, n_good_test=2, seed=1)
    b = make_defect_images(n_normal=5, n_per_kind=3, size=24, n_good_test=2, seed=1)
    c = make_defect_images(n_normal=5, n_per_kind=3, size=24, n_good_test=2, seed=2)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.test_masks, b.test_masks)
    assert not np.array_equal(a.test, c.test)
    assert a.train.shape == (5, 3, 24, 24) and a.train.dtype == np.uint8
    assert a.test_kinds == tuple(k for k in IMAGE_DEFECT_KINDS for _ in range(3)) + ("good", "good")
    for i, kind in enumerate(a.test_kinds):
        ids = set(np.unique(a.test_masks[i])) - {0}
        assert ids == ({IMAGE_DEFECT_KINDS.index(kind) + 1} if kind != "good" else set())
        if kind != "good":  # the defect changes the pixels under its mask
            assert a.test_masks[i].any()


def test_defect_images_bad_input():
    with pytest.raises(DataValidationError, match="defect kind"):
        make_defect_images(kinds=("dent",))
    with pytest.raises(DataValidationError, match="size"):
        make_defect_images(size=4)
    with pytest.raises(DataValidationError, match="contrast"):
        make_defect_images(contrast=0.0)


def test_faint_defects_share_everything_but_their_strength():
    full = make_defect_images(n_normal=4, n_per_kind=2, size=24, n_good_test=1, seed=3)
    assert load_images("SYNTH-IMG-FAINT/3", size=(24, 24)).name == "SYNTH-IMG-FAINT/3"
    faint = make_defect_images(
        n_normal=4, n_per_kind=2, size=24, n_good_test=1, seed=3, contrast=FAINT_CONTRAST
    )
    assert np.array_equal(full.train, faint.train) and np.array_equal(full.test_masks, faint.test_masks)
    assert np.array_equal(full.test[-1], faint.test[-1])  # the defect-free test image
    diff = np.abs(full.test.astype(int) - faint.test.astype(int)).max(axis=1)  # (n, H, W)
    inside = full.test_masks > 0
    assert diff[~inside].max() == 0  # nothing moves outside the masks
    assert all(diff[i][inside[i]].mean() > 5 for i in range(len(full.test) - 1))  # the defects are weaker


def test_synth_image_set_is_registered():
    s = load_images("SYNTH-IMG/4", size=(16, 16))
    assert s.name == "SYNTH-IMG/4" and s.train.shape[1:] == (3, 16, 16)
    with pytest.raises(DataValidationError, match="SYNTH-IMG"):
        load_images("SYNTH-IMG/x")


def test_few_shot_split_takes_a_third_of_each_type(split):
    assert split.kinds == sorted(IMAGE_DEFECT_KINDS)
    assert all(split.train_kinds.count(k) == 2 for k in IMAGE_DEFECT_KINDS)  # ceil(4 / 3)
    assert all(split.test_kinds.count(k) == 2 for k in IMAGE_DEFECT_KINDS)
    assert split.test_kinds.count("good") == 2
    assert set(np.unique(split.train_masks)) == {0, 1}
    one = make_defect_images(n_normal=3, n_per_kind=1, size=SIZE, seed=0)
    with pytest.raises(DataValidationError, match="at least two images"):
        few_shot_split(one)


# -------------------------------------------------------------------------------------- attention
def test_attention_weights_average_one_inside_and_zero_outside():
    torch.manual_seed(0)
    y = torch.zeros(2, 3, 8, 8)
    x0 = torch.zeros(2, 3, 8, 8)
    x0[:, :, 2, 2] = 1.0  # already changed: less weight there than at unchanged mask pixels
    m = torch.zeros(2, 1, 8, 8)
    m[:, :, 1:5, 1:5] = 1
    w = attention_weights(y, x0, m)
    assert torch.all(w[m == 0] == 0)
    assert torch.allclose(w.sum((1, 2, 3)), m.sum((1, 2, 3)))
    assert torch.all(w[:, 0, 2, 2] < w[:, 0, 3, 3]) and torch.all(w[:, 0, 3, 3] > 1)
    assert torch.equal(attention_weights(y, None, m), m)


def test_reweighting_keeps_the_weight_level_of_thin_masks_at_low_resolution():
    from diffad.imagegen import ReweightAttnProcessor

    m = torch.zeros(1, 1, 8, 8)
    m[0, 0, 3, :] = 1  # a one-pixel line
    state = ReweightState(tokens=slice(0, 1), weights=m.clone(), image_shape=(8, 8))
    w = ReweightAttnProcessor(state)._layer_weights(16, batch=1, heads=2)  # a 4 x 4 layer
    assert w.shape == (2, 16)
    grid = w[0].view(4, 4)
    assert torch.equal(grid[1], torch.ones(4)) and grid.sum() == 4  # the cells the line crosses keep weight 1


def test_outside_weight_fills_the_cells_without_mask_pixels():
    from diffad.imagegen import ReweightAttnProcessor

    m = torch.zeros(2, 1, 8, 8)
    m[:, 0, 3, :] = 2.0  # a line of weight 2
    state = ReweightState(
        tokens=slice(0, 1), weights=m.clone(), image_shape=(8, 8), outside=torch.tensor([0.0, 0.5])
    )
    grid = ReweightAttnProcessor(state)._layer_weights(16, batch=2, heads=1).view(2, 4, 4)
    assert torch.equal(grid[:, 1], torch.full((2, 4), 2.0))  # cells the line crosses: its weight
    assert torch.equal(grid[0, 0], torch.zeros(4)) and torch.equal(grid[1, 0], torch.full((4,), 0.5))


def test_reweighting_changes_only_the_anomaly_token_maps(fitted, split):
    state = ReweightState(tokens=fitted.conditioner_.anomaly_slice, image_shape=(SIZE, SIZE), record=True)
    install_reweighting(fitted.prior_, state)
    m = torch.as_tensor(split.train_masks[:2], dtype=torch.float32)[:, None]
    state.weights = m * 3.0
    kind = torch.tensor([0, 1])
    cond = fitted.conditioner_(kind, m)
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fitted.prior_(x, torch.tensor(10), cond)
    assert state.maps, "no cross-attention layer used the re-weighting processor"
    anomaly = fitted.conditioner_.anomaly_slice
    for before, after in state.maps:
        others = [i for i in range(before.shape[-1]) if not anomaly.start <= i < anomaly.stop]
        assert torch.equal(before[..., others], after[..., others])
        assert not torch.allclose(before[..., anomaly], after[..., anomaly])
    # with no weights the processor is plain attention: same output as diffusers' default processor
    state.weights, state.record = None, False
    with torch.no_grad():
        ours = fitted.prior_(x, torch.tensor(10), cond).sample
        from diffusers.models.attention_processor import AttnProcessor

        fitted.prior_.set_attn_processor(AttnProcessor())
        ref = fitted.prior_(x, torch.tensor(10), cond).sample
    assert torch.allclose(ours, ref, atol=1e-5)


# --------------------------------------------------------------------------------------- generator
def test_generation_keeps_the_background_and_is_deterministic(fitted, split, tmp_path):
    out = fitted.generate(split.normal, 6, seed=5)
    assert out["images"].shape == (6, 3, SIZE, SIZE) and out["masks"].shape == (6, SIZE, SIZE)
    assert out["kinds"] == [fitted.kinds_[i % 4] for i in range(6)]
    assert all(m.any() for m in out["masks"])
    outside = ~out["masks"].astype(bool)[:, None].repeat(3, axis=1)
    assert np.array_equal(out["images"][outside], split.normal[out["normal_index"]][outside])
    again = fitted.generate(split.normal, 6, seed=5)
    assert np.array_equal(out["images"], again["images"]) and np.array_equal(out["masks"], again["masks"])
    # RePaint resampling and classifier-free guidance: other samples, same background, deterministic
    for setting, value in (("resample", 3), ("guidance", 3.0)):
        setattr(fitted.config, setting, value)
        try:
            s1, s2 = (fitted.generate(split.normal, 6, seed=5, masks=out["masks"]) for _ in range(2))
        finally:
            setattr(fitted.config, setting, 1)
        assert np.array_equal(s1["images"], s2["images"]) and not np.array_equal(
            s1["images"], out["images"]
        ), setting
        assert np.array_equal(s1["images"][outside], out["images"][outside]), setting
    with pytest.raises(DataValidationError, match="guidance"):
        ImageGenConfig(guidance=-1.0)
    other = fitted.generate(split.normal, 6, seed=6)
    assert not np.array_equal(out["images"], other["images"])
    off = fitted.generate(split.normal, 6, seed=5, masks=out["masks"], reweight=False)
    assert not np.array_equal(off["images"], out["images"])  # the switch is live
    # given conditions replace the fitted ones: the fitted ones themselves reproduce the sample, others do not
    with torch.no_grad():
        m = torch.as_tensor(out["masks"], dtype=torch.float32)[:, None]
        cond = fitted.conditioner_(torch.tensor([fitted.kinds_.index(k) for k in out["kinds"]]), m)
    same = fitted.generate(split.normal, 6, seed=5, masks=out["masks"], kinds=out["kinds"], conditions=cond)
    assert np.array_equal(same["images"], out["images"])
    moved = fitted.generate(
        split.normal, 6, seed=5, masks=out["masks"], kinds=out["kinds"], conditions=cond + 1.0
    )
    assert not np.array_equal(moved["images"], out["images"])
    with pytest.raises(DataValidationError, match="conditions"):
        fitted.generate(split.normal, 6, seed=5, conditions=cond[:2])
    fitted.save(tmp_path / "m")
    loaded = AnomalyDiffusion.load(tmp_path / "m")
    assert loaded.mask_areas_ == fitted.mask_areas_
    assert np.array_equal(loaded.generate(split.normal, 6, seed=5)["images"], out["images"])


def test_calibrated_outside_weights(fitted, split, tmp_path):
    gen = AnomalyDiffusion.load(fitted.save(tmp_path / "m"))
    _accept_any_mask(gen)
    base = gen.generate(split.normal, 4, seed=2)
    res = gen.calibrate_reweighting(
        split.normal, split.train_images, split.train_masks, split.train_kinds, grid=(0.0, 1.0), n_per_kind=2
    )
    assert set(res["chosen"]) == set(gen.kinds_) and set(res["chosen"].values()) <= {0.0, 1.0}
    assert set(res["grid"]) == {0.0, 1.0} and all(v > 0 for v in res["real"].values())
    for k in gen.kinds_:  # the choice is the grid value whose contrast is nearest the real one on a log scale
        dist = {g: abs(np.log(res["grid"][g][k] / res["real"][k])) for g in (0.0, 1.0)}
        assert dist[res["chosen"][k]] == min(dist.values())
    assert gen.outside_weights_ == res["chosen"]
    gen.outside_weights_ = dict.fromkeys(gen.kinds_, 1.0)
    assert not np.array_equal(gen.generate(split.normal, 4, seed=2)["images"], base["images"])
    gen.outside_weights_ = dict.fromkeys(gen.kinds_, 0.0)  # 0: the paper's weights, the uncalibrated default
    assert np.array_equal(gen.generate(split.normal, 4, seed=2)["images"], base["images"])
    gen.outside_weights_ = {"hole": 0.25}
    assert AnomalyDiffusion.load(gen.save(tmp_path / "c")).outside_weights_ == {"hole": 0.25}
    with pytest.raises(DataValidationError, match=r"values in \[0, 1\]"):
        gen.calibrate_reweighting(
            split.normal, split.train_images, split.train_masks, split.train_kinds, grid=(2.0,)
        )
    with pytest.raises(DataValidationError, match="every type"):
        gen.calibrate_reweighting(
            split.normal, split.train_images[:1], split.train_masks[:1], split.train_kinds[:1]
        )
    gen.fit_anomaly(split.train_images, split.train_masks, split.train_kinds)
    assert gen.outside_weights_ == {}  # new embeddings: the calibration no longer holds


def test_mask_support_check(fitted, split):
    gen = AnomalyDiffusion(ImageGenConfig.tiny(SIZE)).fit_masks(split.train_masks, split.train_kinds)
    areas = split.train_masks.reshape(len(split.train_masks), -1).sum(1)
    hole = [a for a, k in zip(areas, split.train_kinds, strict=True) if k == "hole"]
    assert gen.mask_areas_["hole"] == (min(hole), max(hole))
    m = np.zeros((SIZE, SIZE), np.uint8)
    assert gen._clean_mask(m, "hole") is None  # empty
    m[2 : 2 + 4, 2 : 2 + 4] = 1  # a 16-pixel blob ...
    m[12, 12] = 1  # ... and a speck
    gen.mask_areas_["hole"] = (8.0, 20.0)
    clean = gen._clean_mask(m, "hole")
    assert clean.sum() == 16 and clean[12, 12] == 0
    gen.mask_areas_["hole"] = (40.0, 60.0)
    assert gen._clean_mask(m, "hole") is None  # too small for the type


def test_fit_anomaly_keeps_the_prior_frozen(split):
    gen = AnomalyDiffusion(ImageGenConfig.tiny(SIZE), seed=1).fit_prior(split.normal)
    before = {k: v.clone() for k, v in gen.prior_.state_dict().items()}
    gen.fit_anomaly(split.train_images, split.train_masks, split.train_kinds)
    assert all(torch.equal(before[k], v) for k, v in gen.prior_.state_dict().items())
    assert not any(p.requires_grad for p in gen.prior_.parameters())
    assert gen.history_["anomaly"] and len(gen.history_["anomaly"]) == gen.config.anomaly_steps


def test_typed_spatial_embedding_reads_the_anomaly_type(fitted, split, tmp_path):
    masks = torch.as_tensor(split.train_masks[:2] > 0).float()[:, None].repeat(2, 1, 1, 1)
    kind = torch.tensor([0, 0, 1, 1])
    spatial = slice(fitted.conditioner_.n_normal + fitted.conditioner_.n_anomaly, None)
    plain = fitted.conditioner_(kind, masks)[:, spatial]  # the paper's split: e_s from the mask alone
    assert torch.equal(plain[:2], plain[2:])
    cfg = ImageGenConfig.tiny(SIZE)
    cfg.spatial_embedding = "typed"
    gen = AnomalyDiffusion(cfg, seed=1).fit_prior(split.normal)
    gen.fit_anomaly(split.train_images, split.train_masks, split.train_kinds)
    typed = gen.conditioner_(kind, masks)
    assert not torch.allclose(typed[:2, spatial], typed[2:, spatial])
    saved = gen.save(tmp_path / "typed")
    back = AnomalyDiffusion.load(saved)
    assert back.config.spatial_embedding == "typed"
    assert torch.equal(back.conditioner_(kind, masks), typed)
    with pytest.raises(DataValidationError, match="spatial_embedding"):
        ImageGenConfig(spatial_embedding="resnet")


def test_layout_spatial_embedding_starts_from_the_prior_layout_of_the_edited_image(fitted, split, tmp_path):
    from diffad.imagegen.models import AnomalyConditioner

    cfg = dataclasses.replace(fitted.config, spatial_embedding="layout")
    fresh = AnomalyConditioner(cfg, len(fitted.kinds_), fitted.prior_condition_)
    image = to_unit(split.normal[:2])
    kind = torch.tensor([0, 1])
    spatial = slice(fresh.n_normal + fresh.n_anomaly, None)
    with torch.no_grad():
        # before training, with nothing masked, e_s is the prior's own layout tokens of the image
        none = torch.zeros(2, 1, SIZE, SIZE)
        assert torch.allclose(
            fresh(kind, none, image)[:, spatial], fitted.prior_condition_.layout(image), atol=1e-5
        )
        # the pixels under the mask do not enter the layout: painting them over changes nothing
        m = torch.as_tensor(split.train_masks[:2] > 0).float()[:, None]
        painted = image * (1 - m) + m * 0.9
        assert torch.equal(fresh(kind, m, image), fresh(kind, m, painted))
    with pytest.raises(DataValidationError, match="image"):
        fresh(kind, m)
    gen = AnomalyDiffusion(cfg, seed=1).fit_prior(split.normal)
    gen.fit_anomaly(split.train_images, split.train_masks, split.train_kinds)
    with torch.no_grad():
        by_kind = gen.conditioner_(
            torch.tensor([0, 1]), m[:1].repeat(2, 1, 1, 1), image[:1].repeat(2, 1, 1, 1)
        )
        assert not torch.allclose(by_kind[0, spatial], by_kind[1, spatial])  # the learned shift is per type
        out = gen.generate(split.normal, 4, masks=split.train_masks[:4], kinds=split.train_kinds[:4], seed=3)
    outside = ~out["masks"].astype(bool)[:, None].repeat(3, axis=1)
    assert np.array_equal(out["images"][outside], split.normal[out["normal_index"]][outside])
    back = AnomalyDiffusion.load(gen.save(tmp_path / "layout"))
    assert back.config.spatial_embedding == "layout"
    again = back.generate(split.normal, 4, masks=split.train_masks[:4], kinds=split.train_kinds[:4], seed=3)
    assert np.array_equal(again["images"], out["images"])


def test_anomaly_loss_per_defect_weighs_each_defect_equally(fitted, split):
    def anomaly_history(loss: str, masks: np.ndarray) -> list[float]:
        cfg = ImageGenConfig.tiny(SIZE)
        cfg.anomaly_loss = loss
        gen = AnomalyDiffusion(cfg, seed=0)
        gen.prior_, gen.prior_condition_ = (
            fitted.prior_,
            fitted.prior_condition_,
        )  # frozen: shared, not changed
        gen.fit_anomaly(split.train_images, masks, split.train_kinds)
        return gen.history_["anomaly"]

    square = np.zeros_like(split.train_masks)
    square[:, 4:8, 4:8] = 1  # every defect the same area: the two averages are the same number
    assert anomaly_history("defect", square) == pytest.approx(anomaly_history("pixel", square), rel=1e-5)
    areas = (split.train_masks > 0).sum(axis=(1, 2))
    assert len(set(areas)) > 1
    assert anomaly_history("defect", split.train_masks) != pytest.approx(
        anomaly_history("pixel", split.train_masks), rel=1e-3
    )
    with pytest.raises(DataValidationError, match="anomaly_loss"):
        ImageGenConfig(anomaly_loss="mean")


def test_anomaly_shift_moves_each_defect_with_its_mask():
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16)
    m = torch.zeros(2, 1, 16, 16)
    m[:, :, 6:9, 5:7] = 1
    g = torch.Generator().manual_seed(0)
    assert shifted(x, m, 0, g)[0] is x  # no move, no random draw
    xm, mm = shifted(x, m, 3, g)
    assert xm.shape == x.shape and mm.shape == m.shape
    for i in range(2):  # each mask keeps its shape, and its image pixels came along with it
        (r, c), (r0, c0) = torch.nonzero(mm[i, 0], as_tuple=True), torch.nonzero(m[i, 0], as_tuple=True)
        dy, dx = int(r.min() - r0.min()), int(c.min() - c0.min())
        assert abs(dy) <= 3 and abs(dx) <= 3 and len(r) == len(r0)
        assert torch.equal(xm[i][:, r, c], x[i][:, r - dy, c - dx])
    assert any(not torch.equal(mm[i], m[i]) for i in range(2))  # (seeded) the defects did move
    with pytest.raises(DataValidationError, match="anomaly_shift"):
        ImageGenConfig(size=16, anomaly_shift=8)


def test_generator_bad_input(split):
    gen = AnomalyDiffusion(ImageGenConfig.tiny(SIZE))
    with pytest.raises(NotFittedError, match="fit_prior"):
        gen.generate(split.normal, 2)
    with pytest.raises(DataValidationError, match="uint8 images of shape"):
        gen.fit_prior(split.normal[:, :, :8])
    with pytest.raises(DataValidationError, match="image size"):
        ImageGenConfig(size=20)
    with pytest.raises(DataValidationError, match="keys among"):
        ImageGenConfig.from_dict({"sise": 16})


# -------------------------------------------------------------------------------------- evaluation
def test_nearest_mask_iou_sees_through_flips_and_shifts():
    train = np.zeros((1, 16, 16), np.uint8)
    train[0, 2:5, 2:9] = 1  # a 3 x 7 bar
    moved = np.zeros((2, 16, 16), np.uint8)
    moved[0, 6:13, 10:13] = 1  # the same bar, rotated and shifted: a copy
    moved[1, 4:8, 4:8] = 1  # a 4 x 4 square: overlaps 3 x 4 at best
    iou = nearest_mask_iou(moved, train)
    assert iou[0] == pytest.approx(1.0)
    assert iou[1] == pytest.approx(12 / (21 + 16 - 12))


def test_crop_paste_moves_real_defects_onto_normal_images(split):
    pairs = crop_paste(split, 10, seed=0)
    assert pairs["images"].shape == (10, 3, SIZE, SIZE)
    assert all(m.sum() in {int(t.sum()) for t in split.train_masks} for m in pairs["masks"])  # whole defects
    assert set(pairs["kinds"]) <= set(split.train_kinds)


def test_defect_contrast_compares_the_mask_with_its_surroundings():
    img = np.full((3, 3, 12, 12), 100, np.uint8)
    img[0, :, 4:6, 4:6] = 151  # a square 51 grey levels brighter than the rest
    img[1, 0, 4:6, 4:6] = 151  # only the red channel
    masks = np.zeros((3, 12, 12), np.uint8)
    masks[:2, 4:6, 4:6] = 1  # the third image has no mask
    c = defect_contrast(img, masks)
    assert c[0] == pytest.approx(51 / 255) and c[1] == pytest.approx(51 / 255 / 3) and np.isnan(c[2])
    ring = img.copy()
    ring[0, :, 2:8, 2:8] = 151  # the surroundings changed as much as the mask: no contrast left
    ring[0, :, 4:6, 4:6] = 151
    assert defect_contrast(ring[:1], masks[:1])[0] == pytest.approx(0.0)
    dark = img.copy()
    dark[0, :, 4:6, 4:6] = 49  # as far below its surroundings as the first one is above
    assert defect_contrast(dark, masks)[0] == pytest.approx(c[0])
    assert defect_contrast(dark, masks, signed=True)[0] == pytest.approx(-51 / 255)
    assert defect_contrast(img.astype(float), masks, signed=True)[0] == pytest.approx(51 / 255)


def test_signed_contrast_by_kind_averages_each_type():
    img = np.full((3, 3, 12, 12), 100, np.uint8)
    img[0, :, 4:6, 4:6] = 151  # bright
    img[1, :, 4:6, 4:6] = 49  # dark
    img[2, :, 4:6, 4:6] = 125  # bright, half as much
    masks = np.zeros((3, 12, 12), np.uint8)
    masks[:, 4:6, 4:6] = 1
    got = signed_contrast_by_kind(
        {"real": (img, masks, ["a", "b", "a"]), "gen": (img[1:], masks[1:], ["a", "a"])}, ["a", "b"]
    )
    assert got["a"]["real"] == pytest.approx((51 + 25) / 2 / 255) and got["b"]["real"] == pytest.approx(
        -51 / 255
    )
    assert got["a"]["gen"] == pytest.approx((-51 + 25) / 2 / 255) and "gen" not in got["b"]


def test_mask_fill_and_pixel_metrics():
    normal = np.zeros((1, 3, 4, 4), np.uint8)
    img = normal.copy()
    img[0, :, 0, :2] = 200
    mask = np.zeros((1, 4, 4), np.uint8)
    mask[0, 0, :4] = 1
    assert mask_fill(img, normal, mask)[0] == pytest.approx(0.5)
    r = pixel_metrics(mask.astype(float), mask)
    assert r["pixel_AUROC"] == 1.0 and r["pixel_AP"] == 1.0


# ------------------------------------------------------------------------------------------- CLI
def test_cli_train_generate_evaluate(tmp_path):
    from typer.testing import CliRunner

    from diffad.cli import app

    model = tmp_path / "m"
    tiny = [
        "--set",
        "prior_channels=[16,32]",
        "--set",
        "mask_channels=[8,16]",
        "--set",
        "cross_dim=16",
        "--set",
        "prior_steps=3",
        "--set",
        "batch_size=4",
        "--set",
        "sample_steps=2",
    ]
    run = CliRunner().invoke
    r = run(app, ["imagegen", "train-prior", "--model", str(model), "--size", "16", "--quiet", *tiny])
    assert r.exit_code == 0, r.output
    r = run(app, ["imagegen", "generate", "--model", str(model), "--quiet"])
    assert r.exit_code == 2 and "fit_anomaly" in r.output
    r = run(
        app,
        [
            "imagegen",
            "train-anomaly",
            "--model",
            str(model),
            "--quiet",
            "--set",
            "anomaly_steps=2",
            "--set",
            "mask_steps=2",
        ],
    )
    assert r.exit_code == 0, r.output
    first = torch.load(model / "anomaly.pt", weights_only=True)
    r = run(app, ["imagegen", "train-anomaly", "--model", str(model), "--quiet", "--seed", "7"])
    assert r.exit_code == 0, r.output
    meta = json.loads((model / "config.json").read_text())
    assert (meta["seed"], meta["prior_seed"]) == (
        7,
        0,
    )  # the stages' seed changes, the prior's is kept on record
    again = torch.load(model / "anomaly.pt", weights_only=True)
    assert any(not torch.equal(first[k], again[k]) for k in first)  # other draws, other embeddings
    r = run(app, ["imagegen", "train-anomaly", "--model", str(model), "--data", "SYNTH-IMG/1", "--quiet"])
    assert r.exit_code != 0 and "normal images differ" in r.output
    r = run(app, ["imagegen", "train-anomaly", "--model", str(model), "--data", "SYNTH-IMG/x", "--quiet"])
    assert r.exit_code != 0 and "SYNTH-IMG/<integer>" in r.output
    assert json.loads((model / "data.json").read_text())["name"] == "SYNTH-IMG/0"
    r = run(
        app, ["imagegen", "train-anomaly", "--model", str(model), "--data", "SYNTH-IMG-FAINT/0", "--quiet"]
    )
    assert r.exit_code == 0, r.output  # same normal images: the prior serves the faint defects too
    assert json.loads((model / "data.json").read_text())["name"] == "SYNTH-IMG-FAINT/0"
    meta = json.loads(
        (model / "config.json").read_text()
    )  # a two-step mask model draws noise: accept any area
    meta["mask_areas"] = {k: [1, 256] for k in meta["kinds"]}
    (model / "config.json").write_text(json.dumps(meta))
    r = run(app, ["imagegen", "generate", "--model", str(model), "--n", "4", "--kind", "hole", "--quiet"])
    assert r.exit_code == 0, r.output
    pairs = np.load(model / "generated" / "pairs.npz")
    assert pairs["images"].shape == (4, 3, 16, 16) and list(pairs["kinds"]) == ["hole"] * 4
    assert (model / "generated" / "grid.png").stat().st_size > 0
    r = run(
        app,
        [
            "imagegen",
            "generate",
            "--model",
            str(model),
            "--n",
            "4",
            "--kind",
            "hole",
            "--quiet",
            "--set",
            "resample=2",
            "--out",
            str(tmp_path / "resampled"),
        ],
    )
    assert r.exit_code == 0, r.output  # a sampling setting changes for the run, not in the saved model
    assert not np.array_equal(np.load(tmp_path / "resampled" / "pairs.npz")["images"], pairs["images"])
    assert json.loads((model / "config.json").read_text())["config"]["resample"] == 1
    r = run(app, ["imagegen", "generate", "--model", str(model), "--quiet", "--set", "anomaly_steps=5"])
    assert r.exit_code != 0 and "only the sampling settings" in r.output
    r = run(
        app, ["imagegen", "calibrate", "--model", str(model), "--n-per-kind", "1", "--grid", "0,1", "--quiet"]
    )
    assert r.exit_code == 0, r.output
    assert "chosen:" in r.output and set(
        json.loads((model / "config.json").read_text())["outside_weights"]
    ) == set(meta["kinds"])
    r = run(app, ["imagegen", "calibrate", "--model", str(model), "--grid", "0,3", "--quiet"])
    assert r.exit_code != 0 and "values in [0, 1]" in r.output
    r = run(
        app,
        [
            "imagegen",
            "evaluate",
            "--model",
            str(model),
            "--n-per-kind",
            "2",
            "--seeds",
            "0",
            "--seg-steps",
            "2",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads((model / "evaluation" / "evaluation.json").read_text())
    assert "calibrated outside weights" in r.output
    assert all(f"AP {k}" in r.output for k in meta["kinds"])  # per-type pixel AP columns
    assert set(res["downstream"]) == {
        "none (normal images only)",
        "real few-shot only",
        "crop-and-paste",
        "generated",
        "generated, no re-weighting",
    }
    assert 0 <= res["nearest_mask_iou"]["mean"] <= 1
    assert set(res["signed_contrast"]) == set(meta["kinds"]) and "signed defect contrast" in r.output
    assert all(
        set(v) == {"real few-shot", "generated", "generated, no re-weighting"}
        for v in res["signed_contrast"].values()
    )


@pytest.mark.data
def test_tire_few_shot_split(shared_data):
    s = few_shot_split(load_images("MVTec3D/tire", shared_data, size=(32, 32)))
    assert s.normal.shape == (10, 3, 32, 32)
    assert {k: s.train_kinds.count(k) for k in s.kinds} == {
        "combined": 1,
        "contamination": 1,
        "cut": 1,
        "hole": 1,
    }
    assert s.test_kinds.count("good") == 2 and len(s.test_kinds) == 10


@pytest.mark.data
def test_tire_crops_keep_the_defects(shared_data):
    from diffad.imagegen.data import crop_image_set

    full = load_images("MVTec3D/tire", shared_data)
    a = crop_image_set(full, 128, 32, normals_per_image=3, good_per_image=2, seed=0)
    b = crop_image_set(full, 128, 32, normals_per_image=3, good_per_image=2, seed=0)
    assert np.array_equal(a.test, b.test)
    assert a.train.shape == (30, 3, 32, 32) and a.test.shape == (12 + 4, 3, 32, 32)
    defective = np.asarray(a.test_kinds) != "good"
    assert all(m.any() for m in a.test_masks[defective]) and not a.test_masks[~defective].any()
    with pytest.raises(DataValidationError, match="crop"):
        crop_image_set(full, 16, 32)


def test_save_refuses_foreign_folders_and_load_gives_persistence_errors(tmp_path):
    from diffad.imagegen import AnomalyDiffusion

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(PersistenceError, match="never overwrites"):
        AnomalyDiffusion().save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "x"
    with pytest.raises(PersistenceError, match="config.json"):
        AnomalyDiffusion.load(tmp_path / "nothing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"format": "else"}')
    with pytest.raises(PersistenceError, match="not written by diffad"):
        AnomalyDiffusion.load(tmp_path / "other")
