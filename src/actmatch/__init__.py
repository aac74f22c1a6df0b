"""actmatch: Activation Matching for Explanation Generation (arXiv 2509.23051), replicated.

Spec: docs/method.md of the project. Subpackages: ``config`` (params schema), ``data``
(dataset registry, downloads), ``classifiers`` (frozen classifier registry and the small
classifiers the pipeline trains).
"""

__version__ = "0.1.0"
