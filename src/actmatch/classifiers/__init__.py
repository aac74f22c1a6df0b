"""Classifier registry (ImageNet classifiers with pinned weights) and the small classifiers the
pipeline trains. ``load_classifier`` / ``load_trained`` return frozen :class:`Classifier` objects."""

from actmatch.classifiers.registry import (CLASSIFIERS, Classifier, ClassifierSpec, build_classifier, freeze,
                                           get_spec, load_classifier, register)
from actmatch.classifiers.train import load_trained
from actmatch.classifiers.artifacts import load_classifier_dir

__all__ = ["CLASSIFIERS", "Classifier", "ClassifierSpec", "build_classifier", "freeze", "get_spec",
           "load_classifier", "load_classifier_dir", "load_trained", "register"]
