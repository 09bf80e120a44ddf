"""The engine's exception tree (pure).

::

    EngineError
    ├── JournalError
    │   ├── NotAJournalError      the file is not a tapeline journal (or is not SQLite at all)
    │   ├── JournalCorruptError   SQLite reports damage while reading
    │   ├── JournalLockedError    another process holds the single-writer lock
    │   └── JournalWriteError     an append failed; nothing of that batch was committed
    ├── ConfigError               bad configuration or arguments
    └── PluginError               a strategy plugin could not be loaded or misbehaved
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EngineError",
    "JournalCorruptError",
    "JournalError",
    "JournalLockedError",
    "JournalWriteError",
    "NotAJournalError",
    "PluginError",
]


class EngineError(Exception):
    """Root of every error tapeline's engine raises on purpose."""


class JournalError(EngineError):
    """A journal could not be opened, read or written."""


class NotAJournalError(JournalError):
    """The file is not a tapeline journal."""


class JournalCorruptError(JournalError):
    """SQLite reported damage in the journal file."""


class JournalLockedError(JournalError):
    """Another process is already writing this journal."""


class JournalWriteError(JournalError):
    """An append failed; none of its batch was committed."""


class ConfigError(EngineError):
    """Configuration or arguments are invalid."""


class PluginError(EngineError):
    """A strategy plugin could not be loaded or broke its contract."""
