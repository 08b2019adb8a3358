"""The key that encrypts webhook secrets and routing keys at rest, and where it comes from.

The same order on every platform (console, Slack, Discord):

1. ``[security] secret_key`` (``SYNCUP_SECURITY_SECRET_KEY``), a Fernet key;
2. else ``[slack] token_encryption_key``, the Fernet key a Slack OAuth install already keeps;
3. else, on a SQLite file, a key file next to the database (``syncup.db.key``), created on first
   use readable by its owner only (0600), like the database itself (storage.private_files);
4. else (PostgreSQL, whose replicas must share the key, or an in-memory SQLite) no key: adding a
   webhook is refused with one line that says which setting to add.

The key is looked up on first use, not at start, so a deployment without webhooks never needs
one. A secret that does not decrypt (the key changed) dead-letters its sends with that reason.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import make_url

from bot.config import Settings, is_fernet_key
from storage.private_files import PRIVATE

KEY_FILE_SUFFIX = ".key"
NO_KEY = (
    "Webhook secrets are encrypted at rest and this database has no key for them: set "
    "[security] secret_key (SYNCUP_SECURITY_SECRET_KEY) to a Fernet key, the same on every "
    "replica; see config.example.toml."
)


class KeyUnavailable(Exception):
    """No key can be had; the message says what the operator must set (one line)."""


class SecretUnreadable(Exception):
    """A stored secret does not decrypt with the key in use (the key changed)."""


class SecretBox:
    """Fernet over one key: :meth:`seal` before a secret is written, :meth:`open` to use it."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode("ascii"))

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode("ascii")

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            raise SecretUnreadable(
                "the stored secret does not decrypt with the current key ([security] "
                "secret_key changed?); remove the endpoint and add it again"
            ) from None


def key_file_path(database_url: str) -> Path | None:
    """Where the key file of a SQLite file database lives; None for other databases."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database + KEY_FILE_SUFFIX)


def read_or_create_key_file(path: Path) -> str:
    """The key in ``path``, made (0600, atomically: a temporary file linked into place) when
    the file does not exist yet; a file readable by others is tightened first."""
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    key = Fernet.generate_key().decode("ascii")
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        os.fchmod(fd, PRIVATE)
        os.write(fd, (key + "\n").encode("ascii"))
        os.fsync(fd)
        os.close(fd)
        fd = -1
        try:
            os.link(temporary, path)  # fails if another process made it first: use theirs
        except FileExistsError:
            return _read_key_file(path)
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    return key


def _read_key_file(path: Path) -> str:
    found = path.stat()
    if stat.S_IMODE(found.st_mode) & 0o077:
        os.chmod(path, stat.S_IMODE(found.st_mode) & ~0o077)
    key = path.read_text(encoding="ascii").strip()
    if not is_fernet_key(key):
        raise KeyUnavailable(
            f"{path} is not a Fernet key file; put back the file the webhook secrets were "
            "encrypted with, or set [security] secret_key"
        )
    return key


def find_key(settings: Settings) -> str:
    """The key by the order in the module's docstring; :class:`KeyUnavailable` without one."""
    for setting in (settings.security.secret_key, settings.slack.token_encryption_key):
        if setting is not None:
            return setting.get_secret_value()
    path = key_file_path(settings.database.url)
    if path is None:
        raise KeyUnavailable(NO_KEY)
    try:
        return read_or_create_key_file(path)
    except OSError as exc:
        raise KeyUnavailable(
            f"Cannot read or create the webhook key file {path} ({exc.strerror}); set "
            "[security] secret_key instead."
        ) from None


class Keys:
    """The settings' :class:`SecretBox`, found on first use and kept."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._box: SecretBox | None = None

    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox(find_key(self._settings))
        return self._box
