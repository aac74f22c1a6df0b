"""``download`` and ``datasets``: which datasets are materialized under data/ and how (method.md §7).

Dataset and photo *names* are not closed lists here: they belong to the data registry
(:mod:`actmatch.data.registry`), and the whole-file check (:mod:`actmatch.check`) refuses names the
registry does not know. Adding a dataset therefore does not change this schema."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from actmatch.config.base import Strict, unique, validate

__all__ = ["Split", "MnistParams", "ClutteredMnistParams", "MnistPairParams", "MorphoMnistParams", "PhotosParams",
           "FashionMnistParams", "ImagenetteParams", "DatasetsParams", "DownloadParams", "datasets", "download"]


class Split(Strict):
    """Fractions of a dataset's images in the train and test parts; they must add up to 1."""

    train: float = Field(gt=0, lt=1)
    test: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _adds_up(self) -> "Split":
        if not math.isclose(self.train + self.test, 1.0, abs_tol=1e-9):
            raise ValueError(f"split fractions must add up to 1 (got train {self.train} + test {self.test} "
                             f"= {self.train + self.test:g})")
        return self


class MnistParams(Strict):
    split: Split
    limit: int | None = Field(default=None, ge=20, le=5000)  # stratified subset (tests); None keeps all 5,000


class ClutteredMnistParams(Strict):
    canvas: int = Field(ge=32, le=256)
    fragments: int = Field(ge=0, le=32)
    fragment_size: int = Field(ge=2, le=28)
    train_copies: int = Field(default=1, ge=1, le=10)  # canvases per train digit (test digits get one)


class MnistPairParams(Strict):
    """A binary task from two mnist classes (SyCE/CyCE's 3 vs 8, method.md §8.1); labels 0, 1 in that order."""

    classes: list[Annotated[int, Field(ge=0, le=9)]] = Field(min_length=2, max_length=2)

    @field_validator("classes")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if v[0] == v[1]:
            raise ValueError(f"the two classes must differ (got {v})")
        return v


class MorphoMnistParams(Strict):
    """The controlled digits of GLANCE (method.md §8.2): the Morpho-MNIST recipe thickness → intensity,
    thickness → slant applied to every mnist digit (constants in actmatch.glance.perturb)."""

    scale: int = Field(default=4, ge=1, le=8)  # upsampling for the morphological edits and measurements


class PhotosParams(Strict):
    names: list[str] = Field(min_length=1)  # photo names of actmatch.data.sources.PHOTO_SOURCES

    @field_validator("names")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return unique(v, "photo names")


class FashionMnistParams(Strict):
    debian_dir: str  # where Debian's dataset-fashion-mnist puts the IDX .gz files
    limit_train: int | None = Field(default=None, ge=10, le=60000)
    limit_test: int | None = Field(default=None, ge=10, le=10000)


class ImagenetteParams(Strict):
    variant: Literal["160", "320"]
    max_per_class_train: int | None = Field(default=None, ge=1)
    max_per_class_test: int | None = Field(default=None, ge=1)


class DatasetsParams(Strict):
    """Settings per dataset. A dataset a plugin registers may have a mapping here under its name (its
    builder reads ``model_extra[name]``); :mod:`actmatch.check` refuses a key the registry does not know."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    mnist: MnistParams
    cluttered_mnist: ClutteredMnistParams
    photos: PhotosParams
    fashion_mnist: FashionMnistParams
    imagenette: ImagenetteParams
    mnist_3v8: MnistPairParams = MnistPairParams(classes=[3, 8])
    morpho_mnist: MorphoMnistParams = MorphoMnistParams()


class DownloadParams(Strict):
    datasets: list[str] = Field(min_length=1)  # source datasets of actmatch.data.registry
    classifiers: list[str] = Field(default_factory=list)  # registry classifiers (built-ins + ACTMATCH_PLUGINS)

    @field_validator("datasets", "classifiers")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return unique(v)


def datasets(data: dict[str, Any]) -> DatasetsParams:
    return validate(DatasetsParams, data, "datasets")


def download(data: dict[str, Any]) -> DownloadParams:
    return validate(DownloadParams, data, "download")
