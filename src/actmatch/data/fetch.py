"""HTTP(S) downloads with retries, resume, sha256 verification and atomic rename.

The only module that touches the network, and only the download stages call it. Written on
the standard library rather than a download helper because none of torchvision's, pooch's or
torch.hub's covers all four of: resuming a cut transfer with a Range request, a full sha256
pin, an atomic rename, and a clear error that removes the partial file on mismatch.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from actmatch.core.errors import ActmatchError

__all__ = ["ChecksumError", "DownloadError", "fetch", "sha256_of", "verify_file"]

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


class DownloadError(ActmatchError, RuntimeError):
    """A transfer failed for good (HTTP error, or retries exhausted). Names the URL."""


class ChecksumError(ActmatchError, ValueError):
    """A file's sha256 is not the pinned one. Names the URL or path, expected and actual hash."""


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path: str | Path, sha256: str, what: str | None = None) -> None:
    """Raise :class:`ChecksumError` unless ``path`` hashes to ``sha256``."""
    actual = sha256_of(path)
    if actual != sha256.lower():
        raise ChecksumError(f"sha256 mismatch for {what or path}: expected {sha256.lower()}, got {actual}")


def _transfer(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (a Range request when ``part`` is not empty)."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "actmatch/0.1"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the part file is complete
            return
        raise
    with resp:
        if have and resp.status != 206:  # server ignored the Range header: start over
            have = 0
        mode = "ab" if have else "wb"
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        got = 0
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                         desc=Path(part).name.removesuffix(".part"), disable=not progress) as bar:
            while block := resp.read(_CHUNK):
                f.write(block)
                got += len(block)
                bar.update(len(block))
        if length is not None and got < int(length):
            raise http.client.IncompleteRead(b"", int(length) - got)


def fetch(url: str, dest: str | Path, sha256: str, *, retries: int = 3, timeout: float = 60.0,
          backoff: float = 1.0, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` and check it against the pinned ``sha256``.

    A file already at ``dest`` with the right hash is kept. The transfer goes to
    ``dest + '.part'``, which survives a cut connection or an interrupted process, so the next
    call resumes it with a Range request. Only a verified file is renamed onto ``dest``.

    Raises:
        DownloadError: an HTTP error status (e.g. 404), or every retry failed.
        ChecksumError: the finished file's hash differs; the partial file is removed.
    """
    dest = Path(dest)
    if len(sha256) != 64:
        raise ValueError(f"sha256 for {url} must be 64 hex digits, got {sha256!r}")
    if dest.exists():
        if sha256_of(dest) == sha256.lower():
            return dest
        log.warning("%s exists but its sha256 is not the pinned one; downloading again", dest)
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            _transfer(url, part, timeout, progress)
            break
        except urllib.error.HTTPError as err:
            if err.code in (408, 429) or err.code >= 500:
                reason = f"HTTP {err.code} {err.reason}"
            else:
                raise DownloadError(f"HTTP {err.code} {err.reason} for {url}") from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError) as err:
            reason = f"{type(err).__name__}: {err}"
        have = part.stat().st_size if part.exists() else 0
        log.warning("download of %s failed (attempt %d/%d, %d bytes kept): %s", url, attempt, retries, have, reason)
        if attempt == retries:
            raise DownloadError(f"download of {url} failed after {retries} attempts ({reason}); "
                                f"{have} bytes kept in {part}, rerun to resume")
        time.sleep(backoff * attempt)
    actual = sha256_of(part)
    if actual != sha256.lower():
        part.unlink()
        raise ChecksumError(f"sha256 mismatch for {url}: expected {sha256.lower()}, got {actual}; "
                            f"the partial file was removed")
    os.replace(part, dest)
    return dest


def copy_verified(src: str | Path, dest: str | Path, sha256: str) -> Path:
    """Copy a local file (e.g. weights a pip package carries), verify it, rename atomically."""
    src, dest = Path(src), Path(dest)
    if not src.is_file():
        raise FileNotFoundError(f"{src} not found")
    verify_file(src, sha256, what=str(src))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return dest
