"""A small VAE whose embedding scores how real generated images look (method.md §8.1).

Charachon et al. compare generated and real images by Fréchet and Jensen–Shannon distances in a
small VAE's embedding space (an Inception network means nothing on 28-px digits). Ours: conv
encoder (32-64, stride 2) → μ, log σ² of ``latent`` dims; transposed-conv decoder; loss =
per-pixel binary cross-entropy (summed per image) + KL to N(0, I); the embedding is μ.

- Fréchet distance (Heusel et al. 2017) between Gaussian fits:
  ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^{1/2}), with ``scipy.linalg.sqrtm``.
- Jensen–Shannon distance (base 2, in [0, 1]) per latent dimension between histograms on shared
  bins over the pooled range, averaged over dimensions (our choice: the authors' binning is not
  in the summary).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from scipy.spatial.distance import jensenshannon
from torch import nn
from tqdm.auto import tqdm

__all__ = ["VAE", "vae_loss", "train_vae", "embed", "frechet_from_stats", "frechet_distance", "js_distance"]


class VAE(nn.Module):
    """``(B, C, S, S)`` in [0, 1], S divisible by 4 → reconstruction logits, μ, log σ² ``(B, latent)``."""

    def __init__(self, channels: int, size: int, latent: int) -> None:
        super().__init__()
        if size % 4:
            raise ValueError(f"VAE input size must be divisible by 4, got {size}")
        self.side = size // 4
        self.enc = nn.Sequential(nn.Conv2d(channels, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                                 nn.Flatten())
        self.mu = nn.Linear(64 * self.side ** 2, latent)
        self.logvar = nn.Linear(64 * self.side ** 2, latent)
        self.dec_in = nn.Linear(latent, 64 * self.side ** 2)
        self.dec = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(32, channels, 4, 2, 1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x)
        return self.mu(h), self.logvar(h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.dec(self.dec_in(z).view(len(x), 64, self.side, self.side)), mu, logvar


def vae_loss(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over images of Σ_pixels BCE(sigmoid(logits), x) + KL(N(μ, σ²) ‖ N(0, I))."""
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp())
    return (rec + kl) / len(x)


def train_vae(x: torch.Tensor, latent: int, epochs: int, lr: float, batch_size: int, seed: int, *,
              on_epoch: Callable[[int, float], None] | None = None, progress: bool = True) -> VAE:
    """Train on pixel-space ``x`` (N, C, S, S) in [0, 1] with Adam; device follows ``x``."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    vae = VAE(x.shape[1], x.shape[-1], latent).to(x.device)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    for epoch in tqdm(range(epochs), desc="vae", disable=not progress):
        vae.train()
        perm = torch.randperm(len(x), generator=gen).to(x.device)
        total = 0.0
        for i in range(0, len(x), batch_size):
            xb = x[perm[i:i + batch_size]]
            logits, mu, logvar = vae(xb)
            loss = vae_loss(logits, xb, mu, logvar)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        if on_epoch is not None:
            on_epoch(epoch, total / len(x))
    return vae.eval()


@torch.no_grad()
def embed(vae: VAE, x: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """μ of each image, float64 ``(N, latent)``."""
    vae.eval()
    return torch.cat([vae.encode(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)]).double().cpu().numpy()


def frechet_from_stats(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^{1/2}); the imaginary part sqrtm leaves from round-off is dropped."""
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of embeddings ``a`` (N, D) and ``b`` (M, D)."""
    return frechet_from_stats(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def js_distance(a: np.ndarray, b: np.ndarray, bins: int = 30) -> float:
    """Mean over dimensions of the base-2 Jensen–Shannon distance between histograms of ``a`` and ``b``."""
    out = []
    for d in range(a.shape[1]):
        lo, hi = min(a[:, d].min(), b[:, d].min()), max(a[:, d].max(), b[:, d].max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        ha, _ = np.histogram(a[:, d], edges)
        hb, _ = np.histogram(b[:, d], edges)
        out.append(jensenshannon(ha, hb, base=2))
    return float(np.mean(out))
