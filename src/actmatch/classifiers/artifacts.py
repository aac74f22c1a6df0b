"""Every classifier, downloaded or trained, lives in one kind of folder,
``results/classifiers/<name>/model/``: ``weights.pth`` + ``source.json`` for a pretrained
registry entry (written by ``download_classifier``), ``model.pt`` for a classifier the
pipeline trained (written by ``train_classifier``). Later stages load either with
:func:`load_classifier_dir`, so their paths in dvc.yaml do not depend on the kind."""

from __future__ import annotations

import json
from pathlib import Path

from actmatch.classifiers.registry import Classifier, fetch_weights, get_spec, load_classifier
from actmatch.classifiers.train import load_trained
from actmatch.core.io import atomic_dir

__all__ = ["write_pretrained_dir", "load_classifier_dir"]


def write_pretrained_dir(name: str, out: str | Path) -> Path:
    """Fetch ``name``'s pinned weights into the folder ``out`` (atomically) and check they load."""
    spec = get_spec(name)
    out = Path(out)
    with atomic_dir(out) as tmp:
        # the transfer goes through a resumable .part file beside the folder, kept if interrupted
        staged = fetch_weights(name, out.parent / "weights.download")
        (tmp / "weights.pth").write_bytes(staged.read_bytes())
        load_classifier(name, tmp / "weights.pth")
        source = {"name": name, "sha256": spec.weights.sha256, "source": spec.weights.describe(), "note": spec.note}
        (tmp / "source.json").write_text(json.dumps(source, indent=2, sort_keys=True) + "\n")
    staged.unlink()
    return out


def load_classifier_dir(folder: str | Path) -> Classifier:
    """Load the classifier in ``folder`` (either kind), frozen, on the CPU."""
    folder = Path(folder)
    if (folder / "model.pt").is_file():
        return load_trained(folder / "model.pt")
    if (folder / "source.json").is_file() and (folder / "weights.pth").is_file():
        name = json.loads((folder / "source.json").read_text())["name"]
        return load_classifier(name, folder / "weights.pth")
    raise FileNotFoundError(f"{folder} holds no classifier (expected model.pt, or weights.pth + source.json); "
                            f"run `dvc repro` to produce it")
