"""The registry of known callback types: the payload base class, what the library knows of each
wire ``type``, and the decorator that registers a payload class. Read-only from outside."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Mapping, TypeVar

from .fields import Record

CURRENT = "current"
DEPRECATED = "deprecated"
LEGACY = "legacy"


class Payload(Record):
    """Base class of every typed payload."""

    #: The wire ``type`` this payload class is registered for (empty for ``UnknownPayload``).
    wire_type: ClassVar[str] = ""


@dataclass(frozen=True)
class UnknownPayload(Payload):
    """The payload of a type this version does not know: every non-common key of the item."""

    data: Mapping[str, Any]


@dataclass(frozen=True)
class CallbackType:
    """What the library knows about one wire ``type``."""

    name: str
    payload: type[Payload]
    status: str
    nested: bool
    #: Rewrites a shape older clients sent into the current one (see ``callback_type``).
    older_shape: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    @property
    def summary(self) -> str:
        return (self.payload.__doc__ or "").strip()

    @functools.cached_property
    def wire_names(self) -> frozenset[str]:
        """The names of the payload's wire fields."""
        return frozenset(name for name, _ in self.payload.wire_fields())

    @functools.cached_property
    def path(self) -> str:
        """The prefix of the payload fields' paths in ``invalid_fields``."""
        return f"{self.name}."


_registry: dict[str, CallbackType] = {}
#: Every known type by wire name; read-only (``callback_type`` is the only way in).
CALLBACK_TYPES: Mapping[str, CallbackType] = MappingProxyType(_registry)

P = TypeVar("P", bound=type[Payload])


def callback_type(
    name: str,
    status: str = CURRENT,
    nested: bool = False,
    older_shape: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> Callable[[P], P]:
    """Register a payload class as the payload of the wire type ``name``.

    ``nested`` marks the types whose fields the documentation places one level deeper, under a
    key named like the type (``{"sms_inbound": {"sms_inbound": {...}}}``). ``older_shape``
    rewrites the payload shape that older Voximplant clients described into the current one.
    """

    def register(cls: P) -> P:
        _registry[name] = CallbackType(name, cls, status, nested, older_shape)
        cls.wire_type = name
        return cls

    return register
