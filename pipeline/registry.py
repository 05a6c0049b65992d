"""The one registry class behind handlers, composites, kernels, symbolics and rewrites.

Every table of "things keyed by an op" in this project is a :class:`Registry`:

* ONNX lowering handlers, keyed by ``(domain, op_type)`` with ``since`` = ONNX opset;
* composites (MIL op sequences for ops MIL lacks), same keys;
* executor kernels, keyed by ``("", mil_op_name)`` with ``since`` = iOS opset number (15..18);
* symbolics, keyed by ``("", "namespace::op")`` (a torch op name);
* rewrites, keyed by ``("", rule_name)``, kept in registration order.

Lookup takes the entry with the highest ``since`` that is <= the requested version; an entry
registered by a user (``user=True``) wins over a built-in one with the same key.  Registering the
same key and ``since`` twice raises :class:`DuplicateEntryError` unless ``override=True``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

NATIVE = "native"
COMPOSITE = "composite"
CUSTOM_LAYER = "custom_layer"


class DuplicateEntryError(ValueError):
    """Raised when a key and ``since`` are registered twice without ``override=True``."""


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object and what is known about it."""

    domain: str
    name: str
    since: int
    value: T
    kind: str = NATIVE
    user: bool = False
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.domain, self.name)

    @property
    def qualified_name(self) -> str:
        return f"{self.domain or 'ai.onnx'}::{self.name}"


class Registry(Generic[T]):
    """A table of objects keyed by ``(domain, name)`` and versioned by ``since``.

    Args:
        label: what the registry holds, used in error messages ("lowering handler", ...).
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self._entries: dict[tuple[str, str], list[Entry[T]]] = {}

    # -- registration -------------------------------------------------------------------
    def add(
        self,
        name: str,
        value: T,
        *,
        domain: str = "",
        since: int = 1,
        kind: str = NATIVE,
        user: bool = False,
        override: bool = False,
        **meta: Any,
    ) -> Entry[T]:
        """Register ``value`` under ``(domain, name)`` from version ``since`` on."""
        entry = Entry(domain, name, since, value, kind, user, dict(meta))
        versions = self._entries.setdefault((domain, name), [])
        for i, old in enumerate(versions):
            if old.since == since and old.user == user:
                if not override:
                    raise DuplicateEntryError(
                        f"{self.label} {entry.qualified_name} since {since} is already "
                        f"registered (by {getattr(old.value, '__module__', '?')}); "
                        "pass override=True to replace it"
                    )
                versions[i] = entry
                return entry
        versions.append(entry)
        versions.sort(key=lambda e: (e.since, e.user))
        return entry

    def register(
        self,
        name: str,
        *,
        domain: str = "",
        since: int = 1,
        kind: str = NATIVE,
        user: bool = False,
        override: bool = False,
        **meta: Any,
    ) -> Callable[[T], T]:
        """Decorator form of :meth:`add`; returns the decorated object unchanged."""

        def deco(value: T) -> T:
            self.add(
                name, value, domain=domain, since=since, kind=kind, user=user,
                override=override, **meta,
            )
            return value

        return deco

    def remove(self, name: str, *, domain: str = "", user: bool | None = None) -> None:
        """Forget the entries of one key (all of them, or only the user's / built-in ones)."""
        versions = self._entries.get((domain, name), [])
        keep = [e for e in versions if user is not None and e.user != user]
        if keep:
            self._entries[(domain, name)] = keep
        else:
            self._entries.pop((domain, name), None)

    # -- lookup -------------------------------------------------------------------------
    def lookup(self, name: str, *, domain: str = "", version: int | None = None) -> Entry[T] | None:
        """The entry for ``(domain, name)`` valid at ``version`` (None: the newest), or None.

        A user entry valid at ``version`` wins over any built-in one.
        """
        versions = self._entries.get((domain, name))
        if not versions:
            return None
        valid = [e for e in versions if version is None or e.since <= version]
        if not valid:
            return None
        users = [e for e in valid if e.user]
        return (users or valid)[-1]

    def get(self, name: str, *, domain: str = "", version: int | None = None) -> T:
        """Like :meth:`lookup` but returns the value and raises KeyError when absent."""
        entry = self.lookup(name, domain=domain, version=version)
        if entry is None:
            raise KeyError(f"no {self.label} for {domain or 'ai.onnx'}::{name} at version {version}")
        return entry.value

    def versions(self, name: str, *, domain: str = "") -> list[Entry[T]]:
        return list(self._entries.get((domain, name), []))

    def __contains__(self, key: object) -> bool:
        if isinstance(key, tuple):
            return key in self._entries
        return ("", key) in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        """Every entry, all versions, in registration order of their keys."""
        for versions in self._entries.values():
            yield from versions

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[tuple[str, str]]:
        return list(self._entries)

    def names(self, domain: str | None = None) -> list[str]:
        return [n for (d, n) in self._entries if domain is None or d == domain]

    def __repr__(self) -> str:
        return f"Registry({self.label!r}, {len(self)} keys)"
