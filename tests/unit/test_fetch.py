"""Downloads against a local http.server: success, resume after a cut, sha256 mismatch, 404,
server errors; no test touches the internet."""

from __future__ import annotations

import hashlib

import pytest

from actmatch.data.fetch import ChecksumError, DownloadError, copy_verified, fetch, sha256_of
from tests.httpserver import LocalServer

DATA = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture()
def server():
    with LocalServer() as srv:
        srv.files["/w.bin"] = DATA
        yield srv


def test_success_writes_verified_file_atomically(server, tmp_path):
    dest = fetch(server.url + "/w.bin", tmp_path / "w.bin", SHA, progress=False)
    assert dest.read_bytes() == DATA
    assert not (tmp_path / "w.bin.part").exists()
    # a second call finds the verified file and sends no request
    n = len(server.requests)
    fetch(server.url + "/w.bin", tmp_path / "w.bin", SHA, progress=False)
    assert len(server.requests) == n


def test_cut_transfer_is_resumed_with_range(server, tmp_path):
    server.cut_after["/w.bin"] = 300_000
    dest = fetch(server.url + "/w.bin", tmp_path / "w.bin", SHA, backoff=0, progress=False)
    assert sha256_of(dest) == SHA
    assert server.requests[0] == ("/w.bin", None)
    assert server.requests[1] == ("/w.bin", "bytes=300000-")


def test_partial_file_from_an_interrupted_process_is_resumed(server, tmp_path):
    (tmp_path / "w.bin.part").write_bytes(DATA[:123_456])
    fetch(server.url + "/w.bin", tmp_path / "w.bin", SHA, progress=False)
    assert server.requests == [("/w.bin", "bytes=123456-")]
    assert (tmp_path / "w.bin").read_bytes() == DATA


def test_server_without_range_support_restarts(server, tmp_path):
    server.ranges = False
    (tmp_path / "w.bin.part").write_bytes(b"garbage")
    fetch(server.url + "/w.bin", tmp_path / "w.bin", SHA, progress=False)
    assert (tmp_path / "w.bin").read_bytes() == DATA


def test_mismatch_removes_partial_and_names_everything(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as exc:
        fetch(server.url + "/w.bin", tmp_path / "w.bin", wrong, progress=False)
    msg = str(exc.value)
    assert server.url + "/w.bin" in msg and f"expected {wrong}" in msg and f"got {SHA}" in msg
    assert list(tmp_path.iterdir()) == []


def test_404_fails_at_once_naming_url(server, tmp_path):
    with pytest.raises(DownloadError, match=r"HTTP 404 .* for http://127\.0\.0\.1:\d+/missing\.bin"):
        fetch(server.url + "/missing.bin", tmp_path / "m.bin", SHA, progress=False)
    assert len(server.requests) == 1
    assert not (tmp_path / "m.bin").exists()


def test_server_error_is_retried_then_reported(server, tmp_path):
    with pytest.raises(DownloadError, match="failed after 2 attempts"):
        fetch(server.url + "/status/503", tmp_path / "x.bin", SHA, retries=2, backoff=0, progress=False)
    assert len(server.requests) == 2


def test_bad_pin_rejected_before_any_request(server, tmp_path):
    with pytest.raises(ValueError, match="64 hex digits"):
        fetch(server.url + "/w.bin", tmp_path / "w.bin", "abc", progress=False)
    assert server.requests == []


def test_stale_dest_with_wrong_hash_is_replaced(server, tmp_path):
    (tmp_path / "w.bin").write_bytes(b"old")
    fetch(server.url + "/w.bin", tmp_path / "w.bin", SHA, progress=False)
    assert (tmp_path / "w.bin").read_bytes() == DATA


def test_copy_verified(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"weights")
    good = hashlib.sha256(b"weights").hexdigest()
    assert copy_verified(src, tmp_path / "out" / "w.pth", good).read_bytes() == b"weights"
    with pytest.raises(ChecksumError, match="expected " + "1" * 64):
        copy_verified(src, tmp_path / "w2.pth", "1" * 64)
    assert not (tmp_path / "w2.pth").exists()
