"""The per-image regime with many images optimized at once (paper-scale issue, item 3).

Each image still has its own U-Net; their parameters are stacked along a leading axis
(``torch.func.stack_module_state``) and the U-Net is applied with ``torch.func.vmap``, so one
step runs every image of a chunk in one batched call instead of one image at a time.

Why the masks equal the sequential run's (:func:`actmatch.explainer.train.explain_per_image`):
image ``i``'s net starts from the same weights (``torch.manual_seed(seed + i)``, or
``init_state``); its loss depends only on its own slice, so the gradient of slice ``i`` is its own
gradient; Adam is elementwise, so one Adam over the stacked tensors moves every slice exactly as
its own Adam would; and the ``rob`` backgrounds are drawn from image ``i``'s own generator
(``seed + i``) in the same order. Only the summation order inside batched convolutions differs,
so masks agree to float tolerance (tested).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap
from tqdm.auto import tqdm

from actmatch.classifiers.registry import Classifier
from actmatch.config.explainer import LossConfig, StepsParams, UNetParams
from actmatch.explainer.objective import loss_terms, reference, weighted_total
from actmatch.explainer.train import (LOGGED, Compute, InitState, MaskRun, OnState, _check_finite, _collect,
                                      _final_terms, adam, autocast, build_unet, ramped)
from actmatch.core.resume import load_state, save_state, state_key
from actmatch.core.masks import fill_values, soft_mask

__all__ = ["explain_per_image_batched"]


def explain_per_image_batched(clf: Classifier, x: torch.Tensor, loss: LossConfig, unet: UNetParams,
                              steps: StepsParams, fill: str, seed: int, *, chunk: int = 16,
                              init_state: InitState = None, state_path: Path | None = None,
                              progress: bool = True, compute: Compute = Compute(), on_state: OnState = None) -> MaskRun:
    """Same contract and state file as ``explain_per_image`` (a run may resume the other's state),
    optimizing ``chunk`` images at a time."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    key = state_key("per_image", loss, unet, steps, fill, seed, init_state is not None, x.shape,
                    float(x.double().sum()))
    state = load_state(state_path, key) or {"key": key, "done": [], "curves": []}
    x = compute.tensor(x)
    ref = reference(clf.model, clf.taps, x)
    baseline = fill_values(x, fill, clf.mean, clf.std)
    bar = tqdm(total=len(x), desc="per-image masks (batched)", disable=not progress, initial=len(state["done"]))
    while len(state["done"]) < len(x):
        lo = len(state["done"])
        idx = list(range(lo, min(lo + chunk, len(x))))
        nets = []
        for i in idx:
            torch.manual_seed(seed + i)
            net = build_unet(clf, unet).to(x.device)
            if init_state is not None:
                net.load_state_dict(init_state[i] if isinstance(init_state, list) else init_state)
            nets.append(net)
        params, buffers = stack_module_state(nets)
        skeleton = copy.deepcopy(nets[0]).to("meta")
        forward = vmap(lambda p, b, xi: functional_call(skeleton, (p, b), (xi[None],))[0])
        opt = adam(list(params.values()), steps.lr)
        scaler = compute.scaler(x.device)
        gens = [torch.Generator().manual_seed(seed + i) for i in idx]
        xc, bc, rc = x[lo:idx[-1] + 1], baseline[lo:idx[-1] + 1], ref.index(slice(lo, idx[-1] + 1))
        curves = [{k: [] for k in LOGGED} for _ in idx]
        kept_msg = (f"the {lo} finished image(s) are kept in {state_path} for a rerun" if state_path
                    else "nothing was saved (no state path)")
        best_area = torch.full((len(idx),), float("inf"))
        best = torch.zeros((len(idx), 1, *x.shape[-2:]))
        for step in range(steps.steps):
            with autocast(compute, x.device):
                p = soft_mask(forward(params, buffers, xc)).float()
                terms = loss_terms(clf.model, clf.taps, xc, rc, p, loss, bc, gens)
                total = weighted_total(terms, loss)
            _check_finite(terms, total, f"images {lo + 1}-{idx[-1] + 1}, step {step + 1}", kept_msg)
            opt.zero_grad(set_to_none=True)
            scaler.scale(ramped(total, terms, loss, steps, step).sum()).backward()
            scaler.step(opt)
            scaler.update()
            terms["total"] = total
            logged = {k: terms[k].detach().cpu().numpy() for k in LOGGED if k in terms}
            for j, c in enumerate(curves):
                for k, v in logged.items():
                    c[k].append(float(v[j]))
            if steps.select == "smallest_kept":
                area = terms["area_hard"].detach().cpu()
                better = (terms["kept"].detach().cpu() > 0) & (area > 0) & (area < best_area)
                best_area = torch.where(better, area, best_area)
                best[better] = p.detach().cpu()[better]
            elif steps.select == "lowest_loss":  # best_area holds the lowest total so far
                tot = total.detach().cpu().float()
                better = tot < best_area
                best_area = torch.where(better, tot, best_area)
                best[better] = p.detach().cpu()[better]
        with torch.no_grad():
            p = soft_mask(forward(params, buffers, xc))
            p_last = p
            has_best = torch.isfinite(best_area)
            if steps.select == "smallest_kept" and has_best.any():
                # the sequential run draws these backgrounds only for an image that has a best mask:
                # rewind the others' generators so their final terms see the same noise
                saved = [g.get_state() for g in gens]
                last_kept = loss_terms(clf.model, clf.taps, xc, rc, p, loss, bc, gens)["kept"].cpu() > 0
                for j in np.flatnonzero(~has_best.numpy()):
                    gens[j].set_state(saved[j])
                last_area = (p > 0.5).float().mean((1, 2, 3)).cpu()
                use = has_best & (~last_kept | (best_area < last_area))
                p = torch.where(use.to(p.device)[:, None, None, None], best.to(p.device), p)
            elif steps.select == "lowest_loss":  # the final masks compete on their own loss
                last_total = weighted_total(loss_terms(clf.model, clf.taps, xc, rc, p, loss, bc, gens), loss).cpu()
                use = best_area < last_total
                p = torch.where(use.to(p.device)[:, None, None, None], best.to(p.device), p)
        final = _final_terms(clf, xc, rc, p, loss, bc, gens)
        for j, i in enumerate(idx if on_state is not None else ()):
            on_state(i, {k: v[j].detach().clone() for k, v in {**params, **buffers}.items()})
        for j in range(len(idx)):
            state["done"].append({"soft": p[j:j + 1].cpu().float(), "last": p_last[j:j + 1].cpu().float(),
                                  "final": {k: v[j:j + 1] for k, v in final.items()}})
            state["curves"].append(curves[j])
        save_state(state_path, state)
        bar.update(len(idx))
    bar.close()
    done = state["done"]
    keys = done[0]["final"].keys() if done else []
    mean_curves = {k: np.mean([c[k] for c in state["curves"]], axis=0).tolist() for k in LOGGED
                   if state["curves"] and state["curves"][0][k]}
    return _collect(done, keys, mean_curves, steps)
