"""The head of the seal chain, anchored outside the ledger and signed with a key the ledger does not hold.

The seals (:mod:`forecast.ledger.seal`) live in the ledger: someone who can write the ledger
can change a row and recompute every seal after it with :func:`~forecast.ledger.seal.seal_refresh`,
or drop the newest refreshes with their seals, or drop the ``seals`` table. So after each
refresh commits, the digest of its seal (the head of the chain) is appended to an *anchor
file* outside the ledger, one JSON line per refresh, each with an HMAC-SHA256 under a secret
key kept outside the ledger and outside the anchor:

* the anchor of a SQLite ledger is ``<ledger>.anchor`` beside it (a backup gets its own copy),
  of a ledger on a database server ``<key folder>/anchors/<ledger id>.anchor``;
  ``FORECAST_LEDGER_ANCHOR`` names another file;
* the key is ``FORECAST_LEDGER_KEY_FILE``, by default
  ``$XDG_CONFIG_HOME/insurgency-forecast/ledger.key`` (``~/.config/...``), 32 random bytes
  made on first use, readable by its owner only.

Every open checks the chain against the anchor: each anchored refresh must still have the
digest anchored for it. What it catches, and what it cannot, is in docs/reliability.md
("The ledger's threat model").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path

from forecast.errors import LedgerError
from forecast.ledger.integrity import ANCHOR_SUFFIX

__all__ = ["ANCHOR_ENV", "KEY_ENV", "Anchor", "default_key_path"]

#: Environment variable naming the anchor file (default: beside a SQLite ledger).
ANCHOR_ENV = "FORECAST_LEDGER_ANCHOR"
#: Environment variable naming the key file.
KEY_ENV = "FORECAST_LEDGER_KEY_FILE"

_FIX = ("Nothing was written. The ledger or its anchor was changed outside the forecast job: restore the ledger "
        "and its .anchor from a backup (each backup keeps its own), or the database's dump.")


def default_key_path() -> Path:
    """``FORECAST_LEDGER_KEY_FILE``, else ``$XDG_CONFIG_HOME/insurgency-forecast/ledger.key``."""
    given = os.environ.get(KEY_ENV, "").strip()
    if given:
        return Path(given).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME", "").strip() or Path.home() / ".config"
    return Path(config) / "insurgency-forecast" / "ledger.key"


def _mac(key: bytes, refresh_id: int, digest: str) -> str:
    return hmac.new(key, f"{int(refresh_id)}:{digest}".encode("ascii"), hashlib.sha256).hexdigest()


class Anchor:
    """The anchor file of one ledger and the key that signs it."""

    def __init__(self, path: str | os.PathLike, key_path: str | os.PathLike | None = None) -> None:
        self.path = Path(path)
        self.key_path = Path(key_path) if key_path is not None else default_key_path()

    @classmethod
    def for_ledger(cls, sqlite_file: Path | None, ledger_id: str | None) -> "Anchor":
        """The anchor of a SQLite ledger file, or of a server ledger by its id (see the module docstring)."""
        given = os.environ.get(ANCHOR_ENV, "").strip()
        if given:
            return cls(Path(given).expanduser())
        if sqlite_file is not None:
            return cls(sqlite_file.with_name(sqlite_file.name + ANCHOR_SUFFIX))
        key = default_key_path()
        return cls(key.parent / "anchors" / f"{ledger_id or 'unnamed'}.anchor", key)

    # -- the key -----------------------------------------------------------------------------

    def _key(self, create: bool) -> bytes | None:
        try:
            return bytes.fromhex(self.key_path.read_text(encoding="ascii").strip())
        except FileNotFoundError:
            if not create:
                return None
        except (OSError, ValueError) as exc:
            raise LedgerError(f"ledger key {self.key_path}: cannot be read ({getattr(exc, 'strerror', None) or exc}); "
                              f"it must hold the hex key the refresh made (or name another with {KEY_ENV})") from None
        try:
            self.key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made meanwhile by another refresh
            return self._key(create=False)
        except OSError as exc:
            raise LedgerError(f"ledger key {self.key_path}: cannot be created ({exc.strerror or exc}); name a "
                              f"writable place with {KEY_ENV}") from None
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return self._key(create=False)

    # -- reading -----------------------------------------------------------------------------

    def entries(self, shown: str) -> dict[int, str]:
        """Refresh id -> anchored digest, every line's MAC checked (empty when there is no anchor yet).

        Raises
        ------
        LedgerError
            A line that is not the job's (bad JSON, a MAC that does not match), or an anchor
            that exists while its key does not.
        """
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise LedgerError(f"ledger {shown}: its anchor {self.path} cannot be read ({exc.strerror or exc})") from None
        lines = [line for line in lines if line.strip()]
        if not lines:
            return {}
        key = self._key(create=False)
        if key is None:
            raise LedgerError(f"ledger {shown}: its anchor {self.path} cannot be checked: the key {self.key_path} is "
                              f"missing. Restore the key file (or name it with {KEY_ENV}); nothing was written.")
        found: dict[int, str] = {}
        for number, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
                refresh_id, digest, mac = int(entry["refresh"]), str(entry["digest"]), str(entry["mac"])
            except (ValueError, KeyError, TypeError):
                raise LedgerError(f"ledger {shown}: line {number} of its anchor {self.path} is not an anchor "
                                  f"entry. {_FIX}") from None
            if not hmac.compare_digest(mac, _mac(key, refresh_id, digest)):
                raise LedgerError(f"ledger {shown}: line {number} of its anchor {self.path} (refresh {refresh_id}) "
                                  f"was not signed with the key {self.key_path}. {_FIX}")
            found[refresh_id] = digest
        return found

    def check(self, chain: dict[int, str], shown: str, *, sealed: bool) -> list[int]:
        """Check the recomputed ``chain`` (refresh id -> digest) against the anchor.

        ``sealed`` says the ledger was made anchored (its ``ledger_info`` says so), so an
        absent anchor is itself a fault. Returns the refresh ids the anchor lacks (newest
        refreshes whose anchoring a kill interrupted, or every refresh of a ledger made
        before the anchor), which the caller anchors when it may write.

        Raises
        ------
        LedgerError
            Naming the ledger, the anchor and the first refresh whose digest differs from the
            anchored one, or the refreshes the ledger no longer has.
        """
        anchored = self.entries(shown)
        if not anchored:
            if sealed and chain:
                raise LedgerError(f"ledger {shown}: its anchor {self.path} is missing or empty, but the ledger was "
                                  f"made with one and holds {len(chain)} refresh(es). {_FIX}")
            return sorted(chain)
        gone = sorted(set(anchored) - set(chain))
        if gone:
            raise LedgerError(f"ledger {shown}: refresh {gone[0]} is anchored in {self.path} but no longer in the "
                              f"ledger{' (nor its checksums)' if not chain else ''}: refreshes were removed. {_FIX}")
        for refresh_id in sorted(anchored):
            if chain[refresh_id] != anchored[refresh_id]:
                raise LedgerError(f"ledger {shown}: the checksum chain up to refresh {refresh_id} differs from the one "
                                  f"anchored in {self.path}: rows of refresh {refresh_id} or before were changed and "
                                  f"the checksums recomputed. {_FIX}")
        newest = max(anchored)
        return [r for r in sorted(chain) if r > newest]

    # -- writing -----------------------------------------------------------------------------

    def append(self, chain: dict[int, str], refresh_ids: list[int]) -> None:
        """Append the digests of ``refresh_ids`` (from ``chain``) to the anchor, signed, synced to disk."""
        if not refresh_ids:
            return
        key = self._key(create=True)
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        lines = "".join(json.dumps({"refresh": r, "digest": chain[r], "at": at, "mac": _mac(key, r, chain[r])}) + "\n"
                        for r in refresh_ids)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise LedgerError(f"the ledger's anchor {self.path} cannot be written ({exc.strerror or exc}); the "
                              "refresh is in the ledger and is anchored by the next run") from None
