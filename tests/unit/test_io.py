"""Atomic, byte-stable writes (core/io.py): the same checkpoint gives the same bytes whatever the file's
name (so DVC stops a rerun where the weights did not change), a checkpoint round-trips, and a failed
write leaves the previous file."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
import torch

from actmatch.core.io import save_torch
from actmatch.core.resume import load_state, save_state


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def test_the_same_object_saved_twice_to_different_names_has_one_md5(tmp_path):
    ckpt = {"state_dict": _net().state_dict(), "format": "x", "seed": 3}
    save_torch(ckpt, tmp_path / "a" / "model.pt")
    save_torch(ckpt, tmp_path / "b" / "other_name.pt")
    assert _md5(tmp_path / "a" / "model.pt") == _md5(tmp_path / "b" / "other_name.pt")
    # the archive's inner folder is fixed, never the (random) temporary file's name
    assert {n.split("/")[0] for n in zipfile.ZipFile(tmp_path / "a" / "model.pt").namelist()} == {"archive"}
    # what the helper avoids: torch.save to a path names the inner folder after the file
    torch.save(ckpt, tmp_path / "c.pt")
    torch.save(ckpt, tmp_path / "d.pt")
    assert _md5(tmp_path / "c.pt") != _md5(tmp_path / "d.pt")


def test_a_checkpoint_round_trips(tmp_path):
    net = _net()
    save_torch({"state_dict": net.state_dict(), "widths": [16, 32]}, tmp_path / "net.pt")
    back = torch.load(tmp_path / "net.pt", map_location="cpu", weights_only=True)
    assert back["widths"] == [16, 32] and list(back["state_dict"]) == list(net.state_dict())
    other = _net()
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    other.load_state_dict(back["state_dict"])
    for a, b in zip(net.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    x = torch.randn(2, 1, 6, 6)
    assert torch.equal(net(x), other(x))


def test_a_failed_save_leaves_the_previous_file_and_no_temporary(tmp_path):
    dest = tmp_path / "state.pt"
    save_torch({"step": 1}, dest)
    before = dest.read_bytes()

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle this")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_torch({"step": 2, "bad": Unpicklable()}, dest)
    assert dest.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]


def test_resume_state_is_byte_stable_and_reads_back(tmp_path):
    state = {"key": "abc", "step": 7, "weights": torch.arange(6.0)}
    save_state(tmp_path / "s1", state)
    save_state(tmp_path / "s2", state)
    assert _md5(tmp_path / "s1") == _md5(tmp_path / "s2")
    back = load_state(tmp_path / "s1", "abc")
    assert back is not None and back["step"] == 7 and torch.equal(back["weights"], torch.arange(6.0))
    assert load_state(tmp_path / "s1", "other settings") is None


def test_every_torch_writer_goes_through_the_helper():
    """One place writes torch files: a ``torch.save`` anywhere else in the library or the stages would
    bring back the temporary file's name inside the archive."""
    root = Path(__file__).resolve().parents[2]
    offenders = [str(p.relative_to(root)) for d in ("src/actmatch", "stages") for p in (root / d).rglob("*.py")
                 if "torch.save(" in p.read_text() and p != root / "src/actmatch/core/io.py"]
    assert not offenders, f"call actmatch.core.io.save_torch instead of torch.save in {offenders}"
