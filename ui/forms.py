"""The UI's one idiom: forms (typed widget groups), events wired by name, updates returned by widget.

- A *form* is a dataclass of input widgets (a subclass of `Form`). Its field names are the API's parameter
  names; a list field made with `each("direction")` is named `direction_1` ... `direction_N`.
- `on(trigger, handler, inputs=..., outputs=..., api_name=..., doc=...)` wires one event. The inputs (forms,
  and `{name: widget}` dicts for loose widgets) reach Gradio as `inputs_kwargs`, so the API page,
  gradio_client and MCP see these names, and the handler receives the values as keyword arguments.
  `doc` is the endpoint's one-line description; without one the event is an internal step, hidden from
  the API page (still callable, so the fuzz tests reach it). `tool=True` also lists it as an MCP tool.
- A handler declares what Gradio injects as ordinary parameters before the values (`request: gr.Request`,
  `progress=gr.Progress()`, `evt: gr.SelectData`, `oauth: gr.OAuthToken | None`) and takes the values as
  `**given` (then `form.read(given)`), or as named parameters when there are a few. Gradio injects
  `gr.Request` only into a declared positional parameter: without one every visitor would share one
  anonymous session (tests/test_api.py checks that two clients get two sessions).
- A handler returns `{widget: value}` for what it changes (`form.set(...)` builds that by field name);
  Gradio leaves the other outputs alone. It returns `gr.skip()` when nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import SimpleNamespace
from typing import Any

import gradio as gr
from gradio.blocks import Block
from gradio.events import Dependency


def each(prefix: str) -> Any:
    """A list field of a form; its widgets are `prefix_1` ... `prefix_N` in the API."""
    return field(default_factory=list, metadata={"each": prefix})


class Values(SimpleNamespace):
    """A form's values by field name (a list field's values as a list)."""


@dataclass(kw_only=True)
class Form:
    """Base of a typed group of input widgets; subclasses are `@dataclass(kw_only=True)`."""

    def widgets(self) -> dict[str, Block]:
        """API name -> widget, in field order (list fields expanded)."""
        named: dict[str, Block] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if "each" in spec.metadata:
                named.update({f"{spec.metadata['each']}_{i + 1}": w for i, w in enumerate(value)})
            else:
                named[spec.name] = value
        return named

    def read(self, given: Mapping[str, Any], **named: Any) -> Values:
        """The handler's keyword values -> Values by field name (list fields regrouped); `named` are the values
        the handler declared itself (an optional file input is declared `= None`, so the API marks it optional)."""
        given = {**given, **named}
        values = {}
        for spec in fields(self):
            if "each" in spec.metadata:
                count = len(getattr(self, spec.name))
                values[spec.name] = [given[f"{spec.metadata['each']}_{i + 1}"] for i in range(count)]
            else:
                values[spec.name] = given[spec.name]
        return Values(**values)

    def set(self, **values: Any) -> dict[Block, Any]:
        """Updates by field name -> {widget: update}; a list field takes one update per widget."""
        updates: dict[Block, Any] = {}
        for name, value in values.items():
            target = getattr(self, name)
            if isinstance(target, list):
                updates.update(zip(target, value, strict=True))
            else:
                updates[target] = value
        return updates


Inputs = Form | Mapping[str, Block] | Sequence[Form | Mapping[str, Block]]


def named_inputs(inputs: Inputs) -> dict[str, Block]:
    """Forms and {name: widget} dicts -> one {API name: widget} dict (a name may appear once)."""
    groups = [inputs] if isinstance(inputs, (Form, Mapping)) else list(inputs)
    named: dict[str, Block] = {}
    for group in groups:
        part = group.widgets() if isinstance(group, Form) else dict(group)
        clash = named.keys() & part.keys()
        if clash:
            raise ValueError(f"Input names used twice: {sorted(clash)}")
        named.update(part)
    return named


def flat(outputs: Sequence[Block | Form]) -> list[Block]:
    """Output widgets, with forms expanded into their widgets."""
    out: list[Block] = []
    for item in outputs:
        out.extend(item.widgets().values() if isinstance(item, Form) else [item])
    return out


def on(trigger: Any, fn: Callable | None, *, inputs: Inputs = (), outputs: Sequence[Block | Form] = (),
       api_name: str, doc: str | None = None, tool: bool = False, **options: Any) -> Dependency:
    """Wire one event (a listener such as `button.click`, a list of them, or a Dependency to chain after)."""
    if tool and not doc:
        raise ValueError(f"/{api_name}: an MCP tool needs a description")
    if fn is not None and doc:
        mark_for_mcp(fn, tool, api_name)
    event = dict(inputs_kwargs=named_inputs(inputs), outputs=flat(outputs), api_name=api_name,
                 api_description=doc or False, api_visibility="public" if doc else "undocumented", **options)
    if isinstance(trigger, Dependency):
        return trigger.then(fn, **event)
    return gr.on(trigger if isinstance(trigger, list) else [trigger], fn, **event)


def mark_for_mcp(fn: Callable, tool: bool, api_name: str) -> None:
    """List a public endpoint as an MCP tool, or keep it off the list (it stays on the API page).

    Gradio lists every public endpoint as an MCP tool unless its function carries an `_mcp_type` other
    than "tool" (gradio/mcp.py, list_tools; "tool" is what `gr.mcp.tool` sets). The tools are the
    stateless calls an assistant should make; one function cannot be both.
    """
    target = getattr(fn, "__func__", fn)  # a bound method's attributes live on its function
    kind = "tool" if tool else "ui"
    if getattr(target, "_mcp_type", kind) != kind:
        raise ValueError(f"/{api_name}: {fn.__name__} is wired both as an MCP tool and as a public non-tool endpoint")
    target._mcp_type = kind
