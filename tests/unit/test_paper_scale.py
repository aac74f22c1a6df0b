"""The paper-scale path on the CPU (issue 6): DDP training with gloo and 2 processes equals one
process with the same global batch; mixed precision and channels_last run and agree with fp32;
the parallel image loader gives the same tensor; the per-class evaluation set is fixed and nested.
GPU-only checks are marked and skip without CUDA."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from actmatch.core import distributed
from actmatch.classifiers.registry import Classifier, freeze
from actmatch.config.explainer import AmortizedParams, StepsParams
from actmatch.explainer import train as T
from actmatch.explainer.inputs import load_inputs
from actmatch.explainer.losses import ShardedGenerator, rob_backgrounds
from actmatch.explainer.outputs import eval_split
from tests.unit.test_explainer_train import LOSS, UNET
from tests.unit.test_losses import Toy

CFG = AmortizedParams(lr=1e-2, epochs=2, batch_size=6)
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _clf() -> Classifier:
    torch.manual_seed(0)
    return Classifier("toy", freeze(Toy()), 8, 1, (0.0,), (1.0,), ("block1", "block2"), ["a", "b", "c"])


def _data() -> torch.Tensor:
    return torch.randn(11, 1, 8, 8, generator=torch.Generator().manual_seed(1))  # 11: an uneven last batch


def _rank(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        net, curves = T.train_amortized(_clf(), _data(), LOSS, UNET, CFG, "normalized_zero", 0, progress=False)
        if rank == 0:
            torch.save({"state": net.state_dict(), "curves": curves}, out)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shard_splits_a_batch_like_tensor_split():
    for n in (1, 5, 6, 11):
        for world in (1, 2, 3):
            rows = [distributed.shard(n, distributed.DistInfo(r, world)) for r in range(world)]
            expect = torch.tensor_split(torch.arange(n), world)
            assert [list(range(n))[s] for s in rows] == [e.tolist() for e in expect]


def test_sharded_generator_draws_the_rows_one_process_would():
    x = torch.zeros(6, 1, 4, 4)
    full = rob_backgrounds(x, ["gaussian", "uniform"], torch.Generator().manual_seed(3))
    parts = [rob_backgrounds(x[s], ["gaussian", "uniform"], ShardedGenerator(torch.Generator().manual_seed(3), 6, s))
             for s in (slice(0, 3), slice(3, 6))]
    for k in range(2):
        assert torch.equal(torch.cat([p[k] for p in parts]), full[k])


@pytest.mark.slow
def test_ddp_with_two_gloo_processes_equals_one_process(tmp_path):
    torch.set_num_threads(1)
    one, curves_one = T.train_amortized(_clf(), _data(), LOSS, UNET, CFG, "normalized_zero", 0, progress=False)
    out = tmp_path / "ddp.pt"
    mp.spawn(_rank, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    two = torch.load(out, weights_only=False)
    for k, v in one.state_dict().items():
        torch.testing.assert_close(two["state"][k], v, rtol=1e-4, atol=1e-5, msg=f"parameter {k}")
    assert set(two["curves"]) == set(curves_one)
    for k in curves_one:  # epoch means all-reduced over ranks = one process's means
        np.testing.assert_allclose(two["curves"][k], curves_one[k], rtol=1e-4, atol=1e-6, err_msg=k)
    assert any(not torch.equal(v, T.build_unet(_clf(), UNET).state_dict()[k]) for k, v in one.state_dict().items())


def test_bf16_autocast_and_channels_last_run_and_agree_with_fp32():
    x = _data()[:3]
    steps = StepsParams(lr=1e-2, steps=5)
    ref = T.explain_per_image(_clf(), x, LOSS, UNET, steps, "black", 0, progress=False)
    cl = T.explain_per_image(_clf(), x, LOSS, UNET, steps, "black", 0, progress=False,
                             compute=T.Compute(channels_last=True))
    torch.testing.assert_close(cl.soft, ref.soft, rtol=1e-4, atol=1e-4)  # a memory layout, not a new number
    bf = T.explain_per_image(_clf(), x, LOSS, UNET, steps, "black", 0, progress=False,
                             compute=T.Compute(precision="bf16"))
    assert torch.isfinite(bf.soft).all() and bf.soft.dtype == torch.float32
    assert (bf.soft - ref.soft).abs().max() < 0.05  # bf16 has 8 bits of mantissa; 5 steps stay close
    assert ((bf.soft > 0.5) == (ref.soft > 0.5)).float().mean() > 0.95
    net, curves = T.train_amortized(_clf(), _data(), LOSS, UNET, CFG, "black", 0, progress=False,
                                    compute=T.Compute(precision="bf16", channels_last=True))
    assert all(np.isfinite(v).all() for v in curves.values())


def test_fp16_uses_a_grad_scaler_and_fp32_does_not():
    dev = torch.device("cpu")
    assert T.Compute(precision="fp16").scaler(dev).is_enabled()
    assert not T.Compute().scaler(dev).is_enabled() and not T.Compute(precision="bf16").scaler(dev).is_enabled()


@pytest.mark.gpu
@gpu
def test_fp16_and_bf16_on_cuda_keep_masks_close():
    dev = torch.device("cuda")
    clf = _clf()
    clf.model.to(dev)
    x = _data()[:3].to(dev)
    steps = StepsParams(lr=1e-2, steps=20)
    ref = T.explain_per_image(clf, x, LOSS, UNET, steps, "black", 0, progress=False)
    for precision in ("fp16", "bf16"):
        res = T.explain_per_image(clf, x, LOSS, UNET, steps, "black", 0, progress=False,
                                  compute=T.Compute(precision=precision, channels_last=True))
        assert ((res.soft > 0.5) == (ref.soft > 0.5)).float().mean() > 0.9, precision


@pytest.mark.slow
def test_parallel_loader_gives_the_same_tensor():
    clf = Classifier("toy", freeze(Toy()), 8, 1, (0.5,), (0.25,), ("block1",), ["a", "b", "c"])
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(int(rng.integers(9, 20)), int(rng.integers(9, 20)), 3), dtype=np.uint8)
              for _ in range(7)]
    idx = [6, 0, 3, 3, 5]
    serial = load_inputs(clf, images, idx, torch.device("cpu"), workers=0)
    parallel = load_inputs(clf, images, idx, torch.device("cpu"), workers=2, batch_size=2)
    assert serial.shape == (5, 1, 8, 8) and torch.equal(serial, parallel)


class _DS:
    def __init__(self, labels, split):
        self.labels, self._split = np.asarray(labels), np.asarray(split)

    def split_indices(self, part):
        return np.flatnonzero(self._split == part)


def test_per_class_evaluation_set_is_balanced_fixed_and_nested():
    labels = [0, 1, 2] * 10
    ds = _DS(labels, ["test", "train"] * 15)
    two = eval_split(ds, 1000, seed=0, per_class=2)
    assert len(two) == 6 and np.bincount(ds.labels[two]).tolist() == [2, 2, 2]
    assert all(i % 2 == 0 for i in two)  # test images only
    four = eval_split(ds, 1000, seed=0, per_class=4)
    assert set(two) <= set(four) and np.array_equal(two, eval_split(ds, 1000, seed=0, per_class=2))
    assert np.array_equal(eval_split(ds, 3, seed=0, per_class=2), two[:3])
    assert np.array_equal(eval_split(ds, 5, seed=0), eval_split(ds, 100, seed=0)[:5])  # unchanged without per_class
