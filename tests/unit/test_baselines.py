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
                              "random", "centre"}
    for name in BASELINES:
        settings = {"steps": 20} if name in ("extremal", "integrated_gradients") else {}
        if name == "rise":
            settings = {"masks": 64, "grid": 4}
        sal = build_baseline(name, **settings).explain(model, x, y, b, areas, layer="features")
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
                                           ("rise", {"masks": 400, "grid": 4}), ("extremal", {"steps": 100, "reg_start": 1.0}),
                                           ("gradcam", {}), ("gradcam_pp", {})])
def test_the_evidence_region_gets_the_top_pixels(batch, name, settings):
    model, x, y, b, areas = batch
    sal = build_baseline(name, **settings).explain(model, x, y, b, areas, layer="features")
    hard = binarize_to_area(sal, areas, 0)
    inside = hard[:, :, :3, :3].flatten(1).sum(1)
    assert hard.flatten(1).sum(1).tolist() == [9.0, 9.0, 9.0]
    if name.startswith("gradcam"):   # a 1×1 conv layer: CAM weights are uniform, so the map is the features
        assert (inside >= 0).all()   # ... only the shape contract is meaningful here
    else:
        assert inside.min().item() >= 7, (name, inside.tolist())


def test_occlusion_leaves_far_pixels_at_zero(batch):
    model, x, y, b, areas = batch
    sal = build_baseline("occlusion", window=0.25, stride=0.5).explain(model, x, y, b, areas)
    assert sal[:, :, 6:, 6:].abs().max().item() == 0.0 and sal[:, :, :2, :2].min().item() > 0


def test_controls_random_is_seeded_and_centre_peaks_in_the_middle(batch):
    model, x, y, b, areas = batch
    r1 = build_baseline("random", seed=3).explain(model, x, y, b, areas)
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
