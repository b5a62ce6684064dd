"""One small registry pattern used for every pluggable component (backends, tasks, policies, ...).

Entries are registered by name, either as an object or as a lazy ``"module:attribute"`` string so that
heavy dependencies are imported only when the entry is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised when a name is not in a registry; the message lists the accepted names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of components with lazy import and helpful errors.

    Args:
        kind: what the registry holds, used in error messages (e.g. ``"environment backend"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, entry: T | str, *, overwrite: bool = False) -> None:
        """Add ``entry`` (an object or a lazy ``"module:attribute"`` path) under ``name``."""
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if name in self._entries and not overwrite:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry

    def get(self, name: str) -> T:
        """Return the entry for ``name``, importing it on first use."""
        if name not in self._entries:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.available()) or '(none)'}"
            )
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = _import_path(entry)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def available(self) -> list[str]:
        """Names registered so far, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.available())

    def __len__(self) -> int:
        return len(self._entries)


def _import_path(path: str) -> object:
    """Import ``"package.module:attribute"``."""
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ValueError(f"lazy registry entries look like 'module:attribute', got {path!r}")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)
