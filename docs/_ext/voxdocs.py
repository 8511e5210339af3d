"""Sphinx directives that render the configuration keys and the callback types from the code.

The tables cannot drift from the package: they are built from ``CONFIG_KEYS`` and
``CALLBACK_TYPES`` at each docs build. The ``voxsignal`` role refuses names that are not signals.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from flask_voxcallbacks import CALLBACK_TYPES, Callback, payloads, signals
from flask_voxcallbacks.config import CONFIG_KEYS
from flask_voxcallbacks.fields import wire_fields

logger = logging.getLogger(__name__)

#: The signals not tied to one type (received, rejected, duplicate and the lifecycle signals).
GENERAL_SIGNALS = tuple(
    name for name in signals.__all__ if isinstance(getattr(signals, name), signals.VoxSignal)
)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return [*lines, ""]


def config_rst() -> list[str]:
    rows = []
    for key in CONFIG_KEYS:
        default = "*required*" if key.required else f"``{key.default!r}``"
        rows.append((f"``{key.name}``", default, key.doc))
    return _table(("Key", "Default", "Meaning"), rows)


def _fields_rst(fields: tuple[tuple[str, Any], ...]) -> list[str]:
    if not fields:
        return ["No payload fields.", ""]
    rows = []
    for name, spec in fields:
        values = (
            f" Documented values: {', '.join(f'``{c}``' for c in spec.choices)}."
            if spec.choices
            else ""
        )
        rows.append((f"``{name}``", spec.kind, f"{spec.doc}.{values}"))
    return _table(("Field", "Type", "Meaning"), rows)


def signals_rst() -> list[str]:
    names = payloads.signal_names()
    lines: list[str] = []
    for type_name, spec in sorted(CALLBACK_TYPES.items(), key=lambda item: names[item[0]]):
        title = f"``{names[type_name]}``"
        lines += [title, "~" * len(title), ""]
        nested = (
            " Its fields may arrive nested once more under the same key." if spec.nested else ""
        )
        lines += [
            f"Wire type ``{type_name}`` ({spec.status}); receivers get a "
            f"``Callback[{spec.payload.__name__}]`` (``from flask_voxcallbacks import "
            f"{spec.payload.__name__}``). {spec.summary}{nested}",
            "",
        ]
        lines += _fields_rst(spec.payload.wire_fields())
    return lines


def common_fields_rst() -> list[str]:
    return _fields_rst(wire_fields(Callback))


def item_types() -> list[Any]:
    found: dict[str, Any] = {}
    for spec in CALLBACK_TYPES.values():
        pending = [spec.payload]
        while pending:
            for _, field in pending.pop().wire_fields():
                if field.item_type is not None and field.item_type.__name__ not in found:
                    found[field.item_type.__name__] = field.item_type
                    pending.append(field.item_type)
    return [found[name] for name in sorted(found)]


def items_rst() -> list[str]:
    lines: list[str] = []
    for item_type in item_types():
        title = f"``{item_type.__name__}``"
        lines += [title, "~" * len(title), "", (item_type.__doc__ or "").strip(), ""]
        lines += _fields_rst(item_type.wire_fields())
    return lines


class _Generated(SphinxDirective):
    has_content = False
    produce: Any = None

    def run(self) -> list[nodes.Node]:
        return self.parse_text_to_nodes("\n".join(self.produce()), allow_section_headings=True)


class ConfigDirective(_Generated):
    produce = staticmethod(config_rst)


class SignalsDirective(_Generated):
    produce = staticmethod(signals_rst)


class CommonFieldsDirective(_Generated):
    produce = staticmethod(common_fields_rst)


class ItemsDirective(_Generated):
    produce = staticmethod(items_rst)


def signal_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Any,
    options: Any = None,
    content: Any = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    known = set(payloads.signal_names().values()) | set(GENERAL_SIGNALS)
    if text not in known:
        message = inliner.reporter.warning(
            f"{text!r} is not a flask_voxcallbacks signal", line=lineno
        )
        return [nodes.literal(rawtext, text)], [message]
    return [nodes.literal(rawtext, text)], []


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("voxcallbacks-config", ConfigDirective)
    app.add_directive("voxcallbacks-signals", SignalsDirective)
    app.add_directive("voxcallbacks-common-fields", CommonFieldsDirective)
    app.add_directive("voxcallbacks-items", ItemsDirective)
    app.add_role("voxsignal", signal_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
