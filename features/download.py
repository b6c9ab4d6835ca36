"""Download a source file by URL, checked against its SHA-256 before anything uses it.

The body is streamed to a temporary file beside the target and hashed as it arrives; the
file is moved into place (``os.replace``) only when the digest matches. A checksum mismatch,
a dropped connection or a kill part-way therefore never leaves a partial or unverified file
under the target name, and an earlier good copy stays as it was. A target that already
exists with the expected digest is not fetched again, so a job that runs every month needs
the network only when the configured release changes.

The reference case is the UCDP Georeferenced Event Dataset (GED), global version, as a zipped
CSV (:data:`UCDP_GED_URL`): the event readers take the ``.zip`` as it is (one CSV inside), and
a multi-country file is cut to the gazetteer's country. UCDP publishes one archive per
version and never changes a published one; a new version has a new URL (``ged<NN><R>``), so
updating the configured URL and its checksum is how a new release is taken in.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from features.atomic import file_sha256, write_atomically
from features.errors import DownloadError

__all__ = ["UCDP_GED_URL", "UCDP_GED_VERSION", "DownloadError", "Fetched", "fetch"]

#: The current UCDP GED global release (version 26.1) and its zipped CSV. Its codebook is
#: ``https://ucdp.uu.se/downloads/ged/ged261.pdf``; the list of releases is
#: ``https://ucdp.uu.se/downloads/``. Compute the checksum once from a download you trust
#: (``sha256sum ged261-csv.zip``) and put it in the refresh configuration.
UCDP_GED_VERSION = "26.1"
UCDP_GED_URL = "https://ucdp.uu.se/downloads/ged/ged261-csv.zip"

_SCHEMES = ("http", "https", "file")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Fetched:
    """A verified local copy of a source: where it is, its digest, and whether it was downloaded now."""

    path: Path
    sha256: str
    downloaded: bool
    bytes: int


def check_sha256(value: str, where: str = "sha256") -> str:
    """The checksum in canonical form (64 lowercase hex digits), or a DownloadError naming ``where``."""
    text = str(value).strip().lower().removeprefix("sha256:")
    if not _HEX64.fullmatch(text):
        raise DownloadError(f"{where}: {value!r} is not a SHA-256 checksum (64 hexadecimal digits, "
                            f"as printed by `sha256sum FILE`)")
    return text


def check_url(url: str, where: str = "url") -> str:
    """The URL if its scheme is http, https or file; else a DownloadError naming ``where``."""
    scheme = urllib.parse.urlsplit(str(url)).scheme.lower()
    if scheme not in _SCHEMES:
        raise DownloadError(f"{where}: {url!r} is not a URL this tool downloads "
                            f"(schemes: {', '.join(_SCHEMES)})")
    return str(url)


def fetch(url: str, dest: str | Path, sha256: str, *, timeout: float = 60.0) -> Fetched:
    """Make ``dest`` a verified copy of ``url``; download only when it is missing or differs.

    Parameters
    ----------
    url
        ``http(s)://`` or ``file://`` address of the file.
    dest
        Where the verified copy goes (its folder is created).
    sha256
        Expected hex SHA-256 of the file's bytes.
    timeout
        Seconds to wait for the connection and for each read.

    Returns
    -------
    Fetched

    Raises
    ------
    DownloadError
        The server cannot be reached or answers with an error, the connection breaks, or the
        bytes have another SHA-256 (then nothing is written and an existing ``dest`` is kept).
    """
    url = check_url(url)
    expected = check_sha256(sha256)
    dest = Path(dest)
    if dest.exists() and file_sha256(dest) == expected:
        return Fetched(dest, expected, downloaded=False, bytes=dest.stat().st_size)
    size = 0

    def download(tmp: Path) -> None:
        nonlocal size
        digest = hashlib.sha256()
        request = urllib.request.Request(url, headers={"User-Agent": "insurgency-forecast refresh"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
        except urllib.error.HTTPError as err:
            raise DownloadError(f"cannot download {url}: the server answered HTTP {err.code} {err.reason}; "
                                f"check the URL (is the release still published?)") from None
        except urllib.error.URLError as err:
            raise DownloadError(f"cannot download {url}: {err.reason}; check the network and the URL") from None
        except (http.client.HTTPException, socket.timeout, OSError) as err:
            raise DownloadError(f"cannot download {url}: the transfer broke off after {size:,} bytes "
                                f"({type(err).__name__}: {err}); nothing was kept, run again") from None
        got = digest.hexdigest()
        if got != expected:
            kept = f"; the copy already at {dest} is kept unchanged" if dest.exists() else ""
            raise DownloadError(
                f"checksum mismatch for {url}: expected sha256 {expected}, got {got} ({size:,} bytes); "
                f"the download was discarded{kept}. If the provider published a new file, check it "
                f"and put its checksum in the configuration")

    write_atomically({dest: download})
    return Fetched(dest, expected, downloaded=True, bytes=size)
