"""Where the weights come from: an explicit path, else ``$AU_HEATMAPS_WEIGHTS``, else the authors' URL.

A URL (``https://``, ``http://`` or ``file://``) is downloaded once into the user cache folder
(``$AU_HEATMAPS_CACHE``, else ``$XDG_CACHE_HOME/au-heatmaps``, else ``~/.cache/au-heatmaps``), with a
progress bar, into a temporary file that is checked to be a readable checkpoint (and, when an
expected SHA-256 is known, to have it) before it is renamed into place, so the cache never holds half
a file, an HTML error page or a file other than the one expected.

The cache is keyed on the whole URL (``<cache>/<hash of the URL>/<file name>``), so two URLs with the
same file name are two models. ``URL#sha256=HEX`` gives the expected hash of any URL; the released
model's is ``weights.sha256`` in ``configs/model.yaml``. A cached file is checked against the expected
hash each time it is used. Plain ``http://`` gets a warning (anyone on the way can change the file).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from model.config import load_model_config

__all__ = [
    "WEIGHTS_ENV",
    "CACHE_ENV",
    "WeightsError",
    "cache_dir",
    "is_url",
    "download",
    "resolve_weights",
    "split_expected_hash",
    "cached_path",
]

log = logging.getLogger(__name__)

WEIGHTS_ENV = "AU_HEATMAPS_WEIGHTS"
CACHE_ENV = "AU_HEATMAPS_CACHE"


class WeightsError(RuntimeError):
    """The weights could not be found or fetched; the message says what to do."""


def cache_dir() -> Path:
    """The folder downloaded weights are kept in."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "au-heatmaps"


def is_url(value: str | os.PathLike[str]) -> bool:
    return urllib.parse.urlparse(str(value)).scheme in {"http", "https", "file"}


def _help(url: str, dest: Path) -> str:
    return (
        f"Download it yourself (e.g. `curl -L -o {dest} {url}`), or pass the file with "
        f"--weights PATH, or set {WEIGHTS_ENV}=PATH."
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


_HASH_FRAGMENT = re.compile(r"^sha256=([0-9a-fA-F]{64})$")


def split_expected_hash(source: str) -> tuple[str, str | None]:
    """``URL#sha256=HEX`` -> (URL, hex in lower case); a URL without that fragment -> (URL, None)."""
    if "#" not in source:
        return source, None
    url, fragment = source.rsplit("#", 1)
    match = _HASH_FRAGMENT.match(fragment)
    if match is None:
        raise WeightsError(f"{source}: the part after '#' must be sha256= and 64 hex digits, got {fragment!r}")
    return url, match.group(1).lower()


def cached_path(url: str) -> Path:
    """Where ``url`` (without its ``#sha256=`` part) is kept: a folder per URL, the file's own name inside."""
    name = Path(urllib.parse.urlparse(url).path).name or "weights.pth.tar"
    return cache_dir() / hashlib.sha256(url.encode()).hexdigest()[:16] / name


def download(url: str, dest: Path, *, progress: bool = True, timeout: float = 60.0, sha256: str | None = None) -> Path:
    """Download ``url`` to ``dest`` atomically, checking the result is a checkpoint (with SHA-256 ``sha256``
    when given: a file with another hash is deleted and refused)."""
    from model.checkpoint import CheckpointError, read_checkpoint

    if urllib.parse.urlparse(url).scheme == "http":
        log.warning(
            "downloading weights over plain http (%s): anyone on the network path can change them; "
            "prefer https, or give the expected hash as URL#sha256=HEX",
            url,
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=f"Downloading {dest.name}",
                    disable=not progress,
                ) as bar:
                    while block := response.read(1 << 16):
                        out.write(block)
                        bar.update(len(block))
                out.flush()
                os.fsync(out.fileno())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise WeightsError(f"Could not download the weights from {url}: {reason}. {_help(url, dest)}") from exc
        if sha256 is not None:
            actual = _sha256(tmp)
            if actual != sha256:
                raise WeightsError(
                    f"The file downloaded from {url} has SHA-256 {actual}, not the expected {sha256}: "
                    f"refused and deleted (a changed or tampered file, or a wrong expected hash)."
                )
        try:
            read_checkpoint(tmp)
        except CheckpointError as exc:
            raise WeightsError(
                f"The file downloaded from {url} is not a usable checkpoint ({exc}). {_help(url, dest)}"
            ) from exc
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _cached_download(url: str, *, progress: bool, sha256: str | None = None) -> Path:
    dest = cached_path(url)
    if dest.is_file() and dest.stat().st_size > 0:
        if sha256 is None or _sha256(dest) == sha256:
            return dest
        log.warning("%s does not have the expected SHA-256 %s; downloading %s again", dest, sha256, url)
    return download(url, dest, progress=progress, sha256=sha256)


def resolve_weights(weights: str | os.PathLike[str] | None = None, *, progress: bool = True) -> Path:
    """Path of the weights to use: ``weights`` if given, else ``$AU_HEATMAPS_WEIGHTS``, else the
    authors' released model (downloaded once into :func:`cache_dir`). Each may be a path or a URL."""
    source: str | None = None
    origin = ""
    if weights is not None and str(weights) != "":
        source, origin = str(weights), "--weights"
    elif os.environ.get(WEIGHTS_ENV):
        source, origin = os.environ[WEIGHTS_ENV], f"${WEIGHTS_ENV}"
    expected: str | None = None
    if source is None:
        released = load_model_config().weights
        source, origin, expected = released.url, "the released model's URL", released.sha256
    if is_url(source):
        url, given = split_expected_hash(source)
        return _cached_download(url, progress=progress, sha256=given or expected)
    path = Path(source).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file {path} (from {origin}) does not exist")
    return path
