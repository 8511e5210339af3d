"""Field declarations and lenient converters for callback payloads.

Every payload and nested item is a frozen dataclass whose fields are declared with the helpers
below (``text()``, ``money()``, ``items(...)``, ...). A declaration carries the converter from the
wire value, a one-line description and an example wire value, so parsing, documentation and test
samples all come from the same place.

Conversion never raises: a value that cannot be converted becomes ``None`` and its dotted path is
reported so the caller can expose it as ``Callback.invalid_fields``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, ClassVar, Mapping, Sequence, TypeVar

__all__ = [
    "FieldSpec",
    "Record",
    "boolean",
    "date_field",
    "example_of",
    "identifier",
    "integer",
    "integer_list",
    "items",
    "money",
    "spec_of",
    "text",
    "text_list",
    "timestamp",
    "wire_fields",
]

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


class Invalid(ValueError):
    """Raised by a converter when a wire value has the wrong shape."""


#: A converter takes a wire value and its dotted path, and returns the converted value with the
#: paths of nested values that were invalid; it raises ``Invalid`` when the value itself is.
Converter = Callable[[Any, str], tuple[Any, list[str]]]


@dataclass(frozen=True)
class FieldSpec:
    """How one wire field is converted, described and sampled."""

    kind: str
    doc: str
    #: The converter of a list or nested field, which reports the paths of invalid elements.
    convert: Converter | None
    example: Any
    choices: tuple[str, ...] = ()
    item_type: type[Record] | None = None
    #: The converter of a scalar field: value in, converted value out (or ``Invalid``).
    scalar: Callable[[Any], Any] | None = None


R = TypeVar("R", bound="Record")
T = TypeVar("T")


class Record:
    """Base of payloads and nested items: builds an instance from a wire mapping."""

    #: Set for the dataclasses built from declarations; used by the docs and the samples.
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @classmethod
    def wire_fields(cls) -> tuple[tuple[str, FieldSpec], ...]:
        """The declared wire fields, in declaration order."""
        return wire_fields(cls)

    @classmethod
    def from_wire(cls: type[R], data: Mapping[str, Any], path: str = "") -> tuple[R, list[str]]:
        """Build an instance from ``data``; return it with the paths of fields that were invalid."""
        values, invalid = convert_fields(cls, data, path)
        return construct(cls, values), invalid

    @classmethod
    def example(cls) -> dict[str, Any]:
        """A plausible wire mapping with every declared field filled (a fresh copy each time)."""
        return example_of(cls)


def wire_fields(cls: type[Any]) -> tuple[tuple[str, FieldSpec], ...]:
    """The declared wire fields of a dataclass, in declaration order."""
    return tuple(
        (f.name, spec) for f in dataclasses.fields(cls) if (spec := spec_of(f)) is not None
    )


def example_of(cls: type[Any]) -> dict[str, Any]:
    """Plausible wire values for every declared field of a dataclass, as a fresh copy."""
    return copy.deepcopy({name: spec.example for name, spec in wire_fields(cls)})


def spec_of(field: dataclasses.Field[Any]) -> FieldSpec | None:
    """The declaration of a dataclass field, or None for fields that are not wire fields."""
    spec = field.metadata.get("vox")
    return spec if isinstance(spec, FieldSpec) else None


def construct(cls: type[T], values: Mapping[str, Any]) -> T:
    """An instance of the frozen dataclass ``cls`` whose fields are exactly ``values``.

    The generated ``__init__`` of a frozen dataclass sets each field through
    ``object.__setattr__``; filling the instance's ``__dict__`` at once gives an equal instance at
    a fraction of the cost. ``values`` must name every field (none of these classes has a
    ``__post_init__``); tests compare the result with the one ``cls(**values)`` gives.
    """
    instance = object.__new__(cls)
    instance.__dict__.update(values)
    return instance


def convert_fields(
    cls: type[Any], data: Mapping[str, Any], path: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """Convert the declared wire fields of ``cls`` found in ``data``."""
    invalid: list[str] = []
    converter = _converters.get(cls)
    if converter is None:
        converter = _converters[cls] = _compile_converter(cls)
    return converter(data, path, invalid), invalid


_converters: dict[type[Any], Callable[[Mapping[str, Any], str, list[str]], dict[str, Any]]] = {}


def _compile_converter(
    cls: type[Any],
) -> Callable[[Mapping[str, Any], str, list[str]], dict[str, Any]]:
    """The converter of one class, written out field by field and compiled once.

    Every callback converts a dozen fields or more, so the loop over the declarations, its look-ups
    and its tuple unpacking cost more than the conversions themselves: the common fields of a
    callback convert in 1.7 us compiled against 2.5 us in a loop (timeit, Python 3.11), and each
    payload's fields save in proportion to their number. The generated function does
    what that loop would, for each field in order: a missing or null value gives None; a value
    that fails its converter gives None and adds its path to ``invalid``; a string given to a
    string field is taken as it is (what ``to_str`` returns for it).
    """
    namespace: dict[str, Any] = {"Invalid": Invalid}
    lines = ["def convert(data, path, invalid):"]
    for index, (name, spec) in enumerate(wire_fields(cls)):
        value = f"v{index}"
        lines.append(f"    {value} = data.get({name!r})")
        if spec.scalar is not None:
            namespace[f"convert{index}"] = spec.scalar
            test = f"{value} is not None"
            if spec.scalar is to_str:
                test += f" and {value}.__class__ is not str"
            lines += [
                f"    if {test}:",
                "        try:",
                f"            {value} = convert{index}({value})",
                "        except Invalid:",
                f"            {value} = None",
                f"            invalid.append(path + {name!r})",
            ]
        else:
            assert spec.convert is not None, f"{name} declares no converter"
            namespace[f"convert{index}"] = spec.convert
            lines += [
                f"    if {value} is not None:",
                "        try:",
                f"            {value}, nested = convert{index}({value}, path + {name!r})",
                "            invalid.extend(nested)",
                "        except Invalid:",
                f"            {value} = None",
                f"            invalid.append(path + {name!r})",
            ]
    fields = ", ".join(f"{name!r}: v{index}" for index, (name, _) in enumerate(wire_fields(cls)))
    lines.append(f"    return {{{fields}}}")
    # The source holds only the names of declared fields, quoted with repr.
    source = compile("\n".join(lines), f"<converter of {cls.__qualname__}>", "exec")
    exec(source, namespace)  # noqa: S102
    converter: Callable[[Mapping[str, Any], str, list[str]], dict[str, Any]]
    converter = namespace["convert"]
    return converter


def _declare(
    kind: str,
    convert: Converter | None,
    doc: str,
    example: Any,
    choices: Sequence[str] = (),
    item_type: type[Record] | None = None,
    scalar: Callable[[Any], Any] | None = None,
) -> Any:
    spec = FieldSpec(kind, doc, convert, example, tuple(choices), item_type, scalar)
    return dataclasses.field(default=None, metadata={"vox": spec})


def _scalar(
    kind: str, convert: Callable[[Any], Any], doc: str, example: Any, choices: Sequence[str] = ()
) -> Any:
    return _declare(kind, None, doc, example, choices, scalar=convert)


def _plain(convert: Callable[[Any], Any]) -> Converter:
    """Adapt a scalar converter to the (value, path) -> (result, invalid paths) shape."""

    def convert_at(value: Any, path: str) -> tuple[Any, list[str]]:
        return convert(value), []

    return convert_at


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise Invalid
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and value.isascii():
        if len(value) > 40:
            raise Invalid
        return int(value)
    raise Invalid


def to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise Invalid


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise Invalid


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Invalid
    if isinstance(value, str) and len(value) > 100:
        raise Invalid
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise Invalid from None
    if not result.is_finite():
        raise Invalid
    return result


def to_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        raise Invalid
    if value == "":
        return None
    # The ISO parser reads the documented form (and offsets) ten times faster than strptime,
    # which still reads the unpadded forms the ISO parser refuses ("2025-3-4 9:26:53").
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.strptime(value, TIMESTAMP_FORMAT)
        except ValueError:
            raise Invalid from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        # The first or last day of the calendar with an offset that takes it out of range.
        raise Invalid from None


def to_date(value: Any) -> date | None:
    if not isinstance(value, str):
        raise Invalid
    if value == "":
        return None
    try:
        return date.fromisoformat(value[:10] if len(value) > 10 and value[10] in " T" else value)
    except ValueError:
        raise Invalid from None


def to_identifier(value: Any) -> int | str:
    if isinstance(value, bool):
        raise Invalid
    if isinstance(value, (int, str)):
        return value
    raise Invalid


def _list_of(convert: Converter) -> Converter:
    """A list whose elements are converted one by one; bad elements are dropped and named."""

    def convert_list(value: Any, path: str) -> tuple[Any, list[str]]:
        if not isinstance(value, list):
            raise Invalid
        result: list[Any] = []
        invalid: list[str] = []
        for index, element in enumerate(value):
            where = f"{path}[{index}]"
            try:
                converted, nested = convert(element, where)
            except Invalid:
                invalid.append(where)
            else:
                result.append(converted)
                invalid.extend(nested)
        return tuple(result), invalid

    return convert_list


def _record(item_type: type[Record]) -> Converter:
    """A nested object converted to ``item_type``."""

    def convert_record(value: Any, path: str) -> tuple[Any, list[str]]:
        if not isinstance(value, dict):
            raise Invalid
        return item_type.from_wire(value, f"{path}.")

    return convert_record


def text(doc: str, example: str = "example", choices: Sequence[str] = ()) -> Any:
    """A string field; ``choices`` lists the documented values (others are still accepted)."""
    return _scalar("string", to_str, doc, choices[0] if choices else example, choices)


def integer(doc: str, example: int = 1001) -> Any:
    """A whole number (JSON number or numeric string)."""
    return _scalar("integer", to_int, doc, example)


def identifier(doc: str, example: int | str = 1001) -> Any:
    """An id that the documentation types both as number and as string; kept as received."""
    return _scalar("integer or string", to_identifier, doc, example)


def money(doc: str, example: float | str = 12.5) -> Any:
    """An amount of money as ``Decimal`` (JSON number or numeric string)."""
    return _scalar("decimal", to_decimal, doc, example)


def boolean(doc: str, example: bool = False) -> Any:
    """A boolean flag."""
    return _scalar("boolean", to_bool, doc, example)


def timestamp(doc: str, example: str = "2025-03-14 09:26:53") -> Any:
    """A ``YYYY-MM-DD HH:MM:SS`` UTC time as an aware ``datetime``."""
    return _scalar("timestamp", to_datetime, doc, example)


def date_field(doc: str, example: str = "2025-04-01") -> Any:
    """A ``YYYY-MM-DD`` date as ``date``."""
    return _scalar("date", to_date, doc, example)


def text_list(doc: str, example: Sequence[str] = ("example",)) -> Any:
    """A list of strings as a tuple."""
    return _declare("list of string", _list_of(_plain(to_str)), doc, list(example))


def integer_list(doc: str, example: Sequence[int] = (1001,)) -> Any:
    """A list of whole numbers as a tuple."""
    return _declare("list of integer", _list_of(_plain(to_int)), doc, list(example))


def items(item_type: type[Record], doc: str) -> Any:
    """A list of nested objects as a tuple of ``item_type``."""
    return _declare(
        f"list of {item_type.__name__}",
        _list_of(_record(item_type)),
        doc,
        [item_type.example()],
        item_type=item_type,
    )
