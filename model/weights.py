"""Where the weights come from: an explicit path, else ``$AU_HEATMAPS_WEIGHTS``, else the authors' URL.

A URL (``https://``, ``http://`` or ``file://``) is downloaded once into the user cache folder
(``$AU_HEATMAPS_CACHE``, else ``$XDG_CACHE_HOME/au-heatmaps``, else ``~/.cache/au-heatmaps``), with a
progress bar, into a temporary file that is checked to be a readable checkpoint before it is renamed
into place, so the cache never holds half a file or an HTML error page.
"""

from __future__ import annotations

import os
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
]

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


def download(url: str, dest: Path, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically, checking the result is a checkpoint."""
    from model.checkpoint import CheckpointError, read_checkpoint

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=f"Downloading {dest.name}", disable=not progress) as bar:
                    while block := response.read(1 << 16):
                        out.write(block)
                        bar.update(len(block))
                out.flush()
                os.fsync(out.fileno())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise WeightsError(f"Could not download the weights from {url}: {reason}. {_help(url, dest)}") from exc
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


def _cached_download(url: str, *, progress: bool) -> Path:
    name = Path(urllib.parse.urlparse(url).path).name or "weights.pth.tar"
    dest = cache_dir() / name
    if dest.is_file() and dest.stat().st_size > 0:
        return dest
    return download(url, dest, progress=progress)


def resolve_weights(weights: str | os.PathLike[str] | None = None, *, progress: bool = True) -> Path:
    """Path of the weights to use: ``weights`` if given, else ``$AU_HEATMAPS_WEIGHTS``, else the
    authors' released model (downloaded once into :func:`cache_dir`). Each may be a path or a URL."""
    source: str | None = None
    origin = ""
    if weights is not None and str(weights) != "":
        source, origin = str(weights), "--weights"
    elif os.environ.get(WEIGHTS_ENV):
        source, origin = os.environ[WEIGHTS_ENV], f"${WEIGHTS_ENV}"
    if source is None:
        source, origin = load_model_config().weights.url, "the released model's URL"
    if is_url(source):
        return _cached_download(source, progress=progress)
    path = Path(source).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file {path} (from {origin}) does not exist")
    return path

