"""The immutable callback object handed to signal receivers."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Mapping, NoReturn, TypeVar

from .fields import construct, convert_fields, money, text
from .registry import CALLBACK_TYPES, CallbackType, Payload, UnknownPayload

#: Keys every item carries besides its payload.
COMMON_KEYS = frozenset(
    {
        "callback_id",
        "type",
        "account_id",
        "hash",
        "account_name",
        "account_email",
        "language_code",
        "account_first_name",
        "account_last_name",
        "balance",
        "currency",
    }
)


#: The payload class of a callback; ``Callback[MinBalance]`` is a low-balance callback.
P_co = TypeVar("P_co", bound=Payload, covariant=True)


@dataclass(frozen=True)
class Callback(Generic[P_co]):
    """One authentic callback, generic in its payload class: a receiver of
    ``min_balance_reached`` gets a ``Callback[MinBalance]``.

    ``payload`` is the typed payload of a known type (see ``CALLBACK_TYPES``) or an
    :class:`~flask_voxcallbacks.payloads.UnknownPayload`. ``invalid_fields`` names the fields whose
    values could not be converted; they are ``None`` here and unchanged in ``raw``, the item as
    received without its ``hash``. ``raw`` is read-only (nested objects and arrays too): it is
    the same for every receiver, and what the store keeps for a replay is never changed by it.
    """

    callback_id: int
    type: str
    account_id: int
    payload: P_co
    account_name: str | None = text("Account login name", "acmecorp")
    account_email: str | None = text("Account e-mail", "ops@acme.example")
    language_code: str | None = text("Notification language (ISO 639-1)", "en")
    account_first_name: str | None = text("Owner first name", "Ada")
    account_last_name: str | None = text("Owner last name", "Lovelace")
    balance: Decimal | None = money("Current balance", 4.5231)
    currency: str | None = text("Account currency", "USD")
    invalid_fields: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def known(self) -> bool:
        """Whether this version of the library knows the type."""
        return self.type in CALLBACK_TYPES


def payload_data(item: Mapping[str, Any], spec: CallbackType) -> tuple[Mapping[str, Any], bool]:
    """The mapping holding the payload fields of ``item``, and whether its shape could be read.

    A shape that cannot be read is flagged rather than taken for a payload whose fields are all
    missing: a payload that is not a mapping (for a type with fields), a nested payload given as
    a list of several items, or a mapping none of whose keys is a field of the type.
    """
    declared = spec.wire_names
    value = item.get(spec.name)
    if value is None:
        return {}, True
    if not isinstance(value, dict):
        # Types without fields arrive as {}, null or true; a scalar there is harmless.
        return {}, not declared
    data: Mapping[str, Any] = value
    if spec.nested and spec.name in value:
        inner = value[spec.name]
        if isinstance(inner, list) and len(inner) == 1:
            inner = inner[0]  # older clients described a list of one item
        if not isinstance(inner, dict):
            return {}, False
        data = inner
    if spec.older_shape is not None:
        data = spec.older_shape(data)
    readable = not data or not declared or not declared.isdisjoint(data)
    return data, readable


def build_callback(
    item: Mapping[str, Any], callback_id: int, account_id: int, type_name: str
) -> Callback[Payload]:
    """Turn an authenticated item into a :class:`Callback`; never raises on field values."""
    common, invalid = convert_fields(Callback, item)
    spec = CALLBACK_TYPES.get(type_name)
    payload: Payload
    if spec is None:
        payload = UnknownPayload({k: v for k, v in item.items() if k not in COMMON_KEYS})
    else:
        data, valid = payload_data(item, spec)
        if not valid:
            invalid.append(type_name)
        payload, nested = spec.payload.from_wire(data, spec.path)
        invalid.extend(nested)
    common["callback_id"] = callback_id
    common["type"] = type_name
    common["account_id"] = account_id
    common["payload"] = payload
    common["invalid_fields"] = tuple(invalid)
    common["raw"] = read_only(item)
    return construct(Callback, common)


class ReadOnlyDict(dict):  # type: ignore[type-arg]
    """A JSON object of ``Callback.raw``: a ``dict`` (``json.dumps`` and ``==`` work as on any
    dict) that refuses every change, so that one receiver cannot alter what the next one sees.
    ``copy.deepcopy(raw)`` gives ordinary dicts and lists to edit.

    A nested object or array is made read-only when it is first read (``raw["key"]``, ``get``,
    ``values``, ``items``, ``copy``): a callback whose ``raw`` is never read costs one shallow
    copy of its item.
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a callback's raw item is read-only; copy.deepcopy() it to change it")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __getitem__(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        frozen = _frozen(value)
        if frozen is not value:
            dict.__setitem__(self, key, frozen)
        return frozen

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 - through __getitem__

    def _all_read_only(self) -> None:
        for key, value in dict.items(self):
            frozen = _frozen(value)
            if frozen is not value:
                # Replacing the value of a key is allowed while iterating.
                dict.__setitem__(self, key, frozen)

    def values(self) -> Any:
        self._all_read_only()
        return dict.values(self)

    def items(self) -> Any:
        self._all_read_only()
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        self._all_read_only()
        return dict(dict.items(self))

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        # Copies (copy, deepcopy, pickle) are ordinary dicts.
        self._all_read_only()
        return dict, (dict(dict.items(self)),)


class ReadOnlyList(list):  # type: ignore[type-arg]
    """A JSON array of ``Callback.raw``: a ``list`` that refuses every change; its nested objects
    and arrays are made read-only when they are read."""

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a callback's raw item is read-only; copy.deepcopy() it to change it")

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = clear = extend = insert = pop = remove = reverse = sort = _read_only

    def _all_read_only(self) -> None:
        for index, value in enumerate(list.__iter__(self)):
            frozen = _frozen(value)
            if frozen is not value:
                list.__setitem__(self, index, frozen)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            self._all_read_only()
            return ReadOnlyList(list.__getitem__(self, index))
        value = list.__getitem__(self, index)
        frozen = _frozen(value)
        if frozen is not value:
            list.__setitem__(self, index, frozen)
        return frozen

    def __iter__(self) -> Any:
        self._all_read_only()
        return list.__iter__(self)

    def copy(self) -> list[Any]:
        self._all_read_only()
        return list(list.__iter__(self))

    def __reduce__(self) -> tuple[type[list[Any]], tuple[list[Any]]]:
        self._all_read_only()
        return list, (list(list.__iter__(self)),)


def _frozen(value: Any) -> Any:
    """A shallow read-only copy of a JSON object or array; any other value as it is (a value
    already read-only is not copied again)."""
    kind = type(value)
    if kind is dict:
        return ReadOnlyDict(value)
    if kind is list:
        return ReadOnlyList(value)
    return value


def read_only(item: Mapping[str, Any]) -> ReadOnlyDict:
    """A read-only copy of a JSON item, nested objects and arrays included, without ``hash``."""
    copy = ReadOnlyDict(item)
    if "hash" in copy:
        dict.__delitem__(copy, "hash")
    return copy


@dataclass(frozen=True)
class RejectedCallback:
    """An item that failed authentication, as sent with ``callback_rejected``.

    Nothing here is trusted. ``raw`` is the item without its ``hash``.
    """

    reason: str
    account_id: int | None
    callback_id: int | None
    type: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_item(
        cls, item: Mapping[str, Any], reason: str, account_id: int | None, callback_id: int | None
    ) -> RejectedCallback:
        type_name = item.get("type")
        return cls(
            reason,
            account_id,
            callback_id,
            type_name if isinstance(type_name, str) else None,
            read_only(item),
        )
