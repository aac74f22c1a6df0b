"""Every baseline adapter of method.md §6 on tiny models: shapes, analytic answers where they exist
(Integrated Gradients of a linear model is (x − b)·w exactly), and that the evidence region wins."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from actmatch.baselines import BASELINES, binarize_to_area, build_baseline, to_unit


class RegionModel(nn.Module):
    """Conv features, then logit 0 = 4 · (mean of the features inside the top-left 3×3 region), logit 1 = 1.
    Only that region matters for class 0."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(1, 2, 1)
        with torch.no_grad():
            self.features.weight.fill_(1.0)
            self.features.bias.zero_()
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        z0 = 4.0 * f[:, :, :3, :3].mean((1, 2, 3))
        return torch.stack([z0, torch.ones_like(z0)], 1)


@pytest.fixture()
def batch():
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.5
    return RegionModel(), x, torch.zeros(3, dtype=torch.long), torch.zeros_like(x), torch.full((3,), 9 / 64)


def test_every_registered_baseline_gives_finite_maps_and_leaves_inputs_alone(batch):
    model, x, y, b, areas = batch
    x0 = x.clone()
    assert set(BASELINES) == {"gradcam", "gradcam_pp", "integrated_gradients", "occlusion", "rise", "extremal",
                              "extremal_authors", "random", "centre"}
    for name in BASELINES:
        settings = {"steps": 20} if name in ("extremal", "extremal_authors", "integrated_gradients") else {}
        if name == "rise":
            settings = {"masks": 64, "grid": 4}
        sal = build_baseline(name, **settings).explain(model, x, y, b, areas, layer="features", ids=["a", "b", "c"])
        assert sal.shape == (3, 1, 8, 8) and torch.isfinite(sal).all(), name
        assert torch.equal(x, x0), name


def test_integrated_gradients_of_a_linear_model_is_exact():
    w = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([w.flatten(), torch.zeros(16)]))
    x = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    b = torch.full_like(x, 0.3)
    sal = build_baseline("integrated_gradients", steps=8).explain(model, x, torch.zeros(2, dtype=torch.long), b,
                                                                 torch.full((2,), 0.5))
    torch.testing.assert_close(sal, (x - b) * w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,settings", [("integrated_gradients", {}), ("occlusion", {"window": 0.25}),
                                           ("rise", {"masks": 400, "grid": 4}),
                                           ("extremal", {"steps": 100, "reg_start": 1.0})])
def test_the_evidence_region_gets_the_top_pixels(batch, name, settings):
    """(Grad-CAM weighs channels, not positions, so this model, whose evidence is a position, is no test
    for it: see the bright-square test below.)"""
    model, x, y, b, areas = batch
    sal = build_baseline(name, **settings).explain(model, x, y, b, areas, layer="features")
    hard = binarize_to_area(sal, areas, 0)
    inside = hard[:, :, :3, :3].flatten(1).sum(1)
    assert hard.flatten(1).sum(1).tolist() == [9.0, 9.0, 9.0]
    assert inside.min().item() >= 7, (name, inside.tolist())


class BrightDark(nn.Module):
    """A conv layer with a "bright" channel relu(local mean − 0.5) and a "dark" channel relu(0.5 − local
    mean), 2×2 max-pooled; logit 0 = 4 · mean of the bright channel, logit 1 = mean of the dark one.
    Grad-CAM for class 0 weighs only the bright channel, so its map is where the image is bright."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(1, 2, 3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(torch.stack([torch.full((1, 3, 3), 1 / 9), torch.full((1, 3, 3), -1 / 9)]))
            conv.bias.copy_(torch.tensor([-0.5, 0.5]))
        self.features = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2))
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).mean((2, 3))
        return torch.stack([4.0 * f[:, 0], f[:, 1]], 1)


@pytest.mark.parametrize("name", ["gradcam", "gradcam_pp"])
def test_gradcam_peaks_on_the_bright_square_for_its_class_and_off_it_for_the_other(name):
    x = 0.1 * torch.rand(2, 1, 16, 24, generator=torch.Generator().manual_seed(0))   # dim, non-square images
    boxes = [(2, 6, 13, 19), (9, 14, 1, 6)]                                          # rows, cols: one square each
    inside = torch.zeros(2, 1, 16, 24, dtype=torch.bool)
    for i, (r0, r1, c0, c1) in enumerate(boxes):
        x[i, 0, r0:r1, c0:c1] = 1.0
        inside[i, 0, r0:r1, c0:c1] = True
    model, b, areas = BrightDark(), torch.zeros_like(x), inside.float().mean((1, 2, 3))
    method = build_baseline(name)
    for y, want_inside in ((torch.zeros(2, dtype=torch.long), True), (torch.ones(2, dtype=torch.long), False)):
        sal = method.explain(model, x, y, b, areas, layer="features")
        assert sal.shape == (2, 1, 16, 24)
        peak = sal.flatten(1).argmax(1)
        assert inside.flatten(1)[torch.arange(2), peak].tolist() == [want_inside] * 2, (name, y.tolist())
        hard = binarize_to_area(sal, areas, 0).bool()
        share = (hard & inside).flatten(1).sum(1) / hard.flatten(1).sum(1)
        assert (share > 0.6).all() if want_inside else (share < 0.4).all(), share.tolist()


def test_occlusion_leaves_far_pixels_at_zero(batch):
    model, x, y, b, areas = batch
    sal = build_baseline("occlusion", window=0.25, stride=0.5).explain(model, x, y, b, areas)
    assert sal[:, :, 6:, 6:].abs().max().item() == 0.0 and sal[:, :, :2, :2].min().item() > 0


def test_controls_random_is_seeded_and_centre_peaks_in_the_middle(batch):
    model, x, y, b, areas = batch
    with pytest.warns(UserWarning, match="position in the batch"):
        r1 = build_baseline("random", seed=3).explain(model, x, y, b, areas)
    with pytest.warns(UserWarning):
        assert torch.equal(r1, build_baseline("random", seed=3).explain(model, x, y, b, areas))
    c = build_baseline("centre").explain(model, x, y, b, areas)
    hard = binarize_to_area(c, torch.full((3,), 4 / 64), 0)
    assert hard[0, 0, 3:5, 3:5].sum() == 4


def test_binarize_and_to_unit():
    sal = torch.tensor([[[[3.0, 1.0], [2.0, 2.0]]]])
    assert binarize_to_area(sal, torch.tensor([0.5]), 0).flatten().tolist()[0] == 1.0
    assert binarize_to_area(sal, torch.tensor([0.5]), 0).sum() == 2
    u = to_unit(sal)
    assert u.min() == 0 and u.max() == 1 and u[0, 0, 1, 0].item() == pytest.approx(0.5)
    assert torch.equal(to_unit(torch.ones(1, 1, 2, 2)), torch.zeros(1, 1, 2, 2))


def test_unknown_baseline_or_setting_names_the_allowed_ones():
    with pytest.raises(KeyError, match="known: centre"):
        build_baseline("gradcam2")
    with pytest.raises(KeyError, match="allowed: .*masks"):
        build_baseline("rise", mask=10)


def test_random_maps_follow_the_image_id_not_the_chunk_or_position():
    model = RegionModel()
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y, b, areas = torch.zeros(5, dtype=torch.long), torch.zeros_like(x), torch.full((5,), 0.1)
    ids = ["img-0", "img-1", "img-2", "img-3", "img-4"]
    method = build_baseline("random", seed=1)
    whole = method.explain(model, x, y, b, areas, ids=ids)
    chunked = torch.cat([method.explain(model, x[s], y[s], b[s], areas[s], ids=ids[s])
                         for s in (slice(0, 2), slice(2, 3), slice(3, 5))])
    assert torch.equal(whole, chunked)                                   # chunking changes nothing
    rev = method.explain(model, x.flip(0), y, b, areas, ids=ids[::-1])
    assert torch.equal(rev.flip(0), whole)                               # nor the position in the batch
    assert len({tuple(m.flatten().tolist()) for m in whole}) == 5        # each image its own map
    assert not torch.equal(build_baseline("random", seed=2).explain(model, x, y, b, areas, ids=ids), whole)
    assert 0.0 <= whole.min() and whole.max() < 1.0
    with pytest.raises(ValueError, match="2 ids for 5 images"):
        method.explain(model, x, y, b, areas, ids=ids[:2])


def test_a_new_baseline_registers_and_builds_by_name():
    """docs/how-to/add-a-baseline.md: subclass Method, set name and defaults, decorate with @register."""
    from actmatch.baselines.base import Method, register

    try:
        @register
        class Brightness(Method):
            name = "toy_brightness"
            defaults = {"power": 1.0}

            def explain(self, model, x, y, baseline, areas, *, layer=None, ids=None):
                return (x - baseline).abs().sum(1, keepdim=True) ** float(self.settings["power"])

        m = build_baseline("toy_brightness", power=2.0)
        assert isinstance(m, Brightness) and m.settings == {"power": 2.0}
        x = torch.tensor([[[[1.0, -3.0], [0.5, 0.0]]]])
        sal = m.explain(nn.Identity(), x, torch.zeros(1, dtype=torch.long), torch.zeros_like(x), torch.tensor([0.25]))
        assert sal.tolist() == [[[[1.0, 9.0], [0.25, 0.0]]]]
        assert binarize_to_area(sal, torch.tensor([0.25]), 0).flatten().tolist() == [0.0, 1.0, 0.0, 0.0]
        with pytest.raises(KeyError, match="allowed: \\['power'\\]"):
            build_baseline("toy_brightness", gamma=1.0)
    finally:
        BASELINES.pop("toy_brightness", None)
    with pytest.raises(KeyError, match="unknown baseline 'toy_brightness'"):
        build_baseline("toy_brightness")


def test_blur_pyramid_interpolates_between_the_image_and_its_most_blurred_copy():
    from actmatch.baselines.optimized import _apply_pyramid, _blur_pyramid

    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    pyr = _blur_pyramid(x, 3.0, 4)
    assert pyr.shape == (4, 2, 3, 16, 16) and torch.equal(pyr[-1], x)
    assert pyr[0].std() < pyr[1].std() < x.std()                      # more blur, less contrast
    torch.testing.assert_close(_apply_pyramid(pyr, torch.ones(2, 1, 16, 16)), x)
    torch.testing.assert_close(_apply_pyramid(pyr, torch.zeros(2, 1, 16, 16)), pyr[0])
    torch.testing.assert_close(_apply_pyramid(pyr, torch.full((2, 1, 16, 16), 0.5)), (pyr[1] + pyr[2]) / 2)


def test_extremal_perturbation_at_its_authors_settings_finds_the_evidence():
    """A model whose logit is the mean brightness of one 4×4 square: preserving that square is all that
    matters, so the optimized mask (few steps here) is highest there and has about the target area
    (no flip jitter: the toy, unlike a photo classifier, is not mirror-invariant)."""
    class Square(torch.nn.Module):
        def forward(self, x):
            s = x[:, :, 2:6, 10:14].mean((1, 2, 3))
            return torch.stack([s * 100, torch.zeros_like(s)], 1)

    x = torch.zeros(1, 1, 16, 16)
    x[:, :, 2:6, 10:14] = 1.0
    method = build_baseline("extremal_authors", steps=60, step=2, levels=4, max_blur=4.0, lr=0.05, jitter=0)
    m = method.explain(Square(), x, torch.tensor([0]), torch.zeros_like(x), torch.tensor([16 / 256]))
    assert m.shape == (1, 1, 16, 16) and 0 <= float(m.min()) and float(m.max()) <= 1
    inside, outside = m[0, 0, 2:6, 10:14].mean(), m[0, 0].sum() - m[0, 0, 2:6, 10:14].sum()
    assert inside > 0.8 and outside / (256 - 16) < 0.2
