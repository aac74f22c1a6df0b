"""tools/benchmark_batched.py: which chunk sizes it measures and the seconds per seed it estimates, by hand."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("benchmark_batched", ROOT / "tools/benchmark_batched.py")
bb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bb)


def test_chunk_sizes_cover_the_run_and_the_photo_counts():
    assert bb.chunk_sizes(20, photos=False) == [1, 2, 4, 8, 16, 20]    # the whole run as one chunk too
    assert bb.chunk_sizes(200, photos=False) == [1, 2, 4, 8, 16]       # 200 at once is not measured
    assert bb.chunk_sizes(6, photos=False) == [1, 2, 4, 6]
    assert bb.chunk_sizes(9, photos=True) == [1, 2, 3, 4, 8, 9]
    assert bb.chunk_sizes(3, photos=True) == [1, 2, 3]


def test_seconds_per_seed_charges_the_remainder_chunk_at_its_own_speed():
    rates = {1: 10.0, 2: 16.0, 4: 24.0, 8: 32.0}   # image-steps per second
    # 20 images x 100 steps in chunks of 8: 8 + 8 at 32/s (25 s each) and the last 4 at 24/s (400/24 s)
    assert bb.seconds_per_seed(rates, 20, 100, 8) == pytest.approx(25 + 25 + 400 / 24)
    # one at a time: 20 x 100 / 10
    assert bb.seconds_per_seed(rates, 20, 100, 1) == pytest.approx(200.0)
    # chunks of 16 (not measured: the largest measured size below, 8, gives the speed) and a remainder of 4
    assert bb.seconds_per_seed(rates, 20, 100, 16) == pytest.approx(1600 / 32 + 400 / 24)
    # a remainder of 3 takes the speed of 2
    assert bb.seconds_per_seed(rates, 7, 10, 4) == pytest.approx(40 / 24 + 30 / 16)
