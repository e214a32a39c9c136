"""MkDocs hook: pages whose tables come from the code, so the docs cannot drift from it.

A page holds a marker (`<!-- generated: spec -->`, `vocabulary`, `cli`) and this hook
replaces it, at build time, with a table made from the Pydantic spec models, the space
vocabulary (`harness._spec.space.PARAMETERS`) or the Typer app.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import typer
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from harness import SearchSpec
from harness._spec.space import PARAMETERS
from harness._spec.spec import Bound, Objective
from harness.cli import app


def on_page_markdown(markdown: str, **_: Any) -> str:
    for name, make in (("spec", spec_tables), ("vocabulary", vocabulary_table), ("cli", cli_reference)):
        marker = f"<!-- generated: {name} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


def spec_tables() -> str:
    """One table per section of the spec, top level first, in declaration order."""
    sections = [("Top level", SearchSpec)]
    seen: set[type[BaseModel]] = set()
    out: list[str] = []
    while sections:
        title, model = sections.pop(0)
        if model in seen:
            continue
        seen.add(model)
        out += [f"### {title}", "", "| field | type | default | meaning |", "| --- | --- | --- | --- |"]
        for name, info in model.model_fields.items():
            for nested in _models_in(info.annotation):
                if nested not in seen:
                    where = {Objective: "objective", Bound: "constraints.<metric>"}.get(nested, name)
                    prefix = "" if model is SearchSpec else f"{_path(title)}."
                    sections.append((f"`{prefix}{where}`", nested))
            meaning = info.description or ""
            out.append(f"| `{name}` | {_type(info.annotation)} | {_default(info)} | {meaning} |")
        out.append("")
    return "\n".join(out)


def _path(title: str) -> str:
    return title.strip("`")


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _type(annotation: Any) -> str:
    """A reader's name for a field's type: `asha` \\| `none`, integer, list of string, or null."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if origin in (list, tuple):
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type(args[0])} to {_type(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping (below)"
    names = {int: "integer", float: "number", str: "string", bool: "boolean"}
    return names.get(annotation, "any")


def _default(info: Any) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
        return "`[]`" if value == [] else "`{}`" if value == {} else "see below"
    if info.default is PydanticUndefined:
        return "required"
    if isinstance(info.default, BaseModel):
        return "see below"
    return "null" if info.default is None else f"`{_yaml(info.default)}`"


def vocabulary_table() -> str:
    """Every `space:` parameter with its default, bounds and meaning."""
    rows = ["| parameter | kind | default | allowed | one per | meaning |", "|" + " --- |" * 6]
    kinds = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}
    for name, p in PARAMETERS.items():
        allowed = ", ".join(f"`{c}`" for c in p.choices) if p.choices else _bounds(p.low, p.high)
        group = {"conv_blocks": "conv block", "dense_layers": "dense layer"}.get(p.group or "", "")
        default = "-" if p.default is None else f"`{_yaml(p.default)}`"
        meaning = p.help.replace("|", "\\|")
        rows.append(f"| `{name}` | {kinds[p.kind]} | {default} | {allowed} | {group} | {meaning} |")
    return "\n".join(rows)


def _yaml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _bounds(low: float | None, high: float | None) -> str:
    if high is None:
        return "" if low is None else f"at least {low:g}"
    return f"{low:g} to {high:g}" if low is not None else f"at most {high:g}"


def cli_reference() -> str:
    """Each command's usage and options, as `--help` prints them."""
    group: Any = typer.main.get_command(app)
    context = type(group).context_class
    with context(group, info_name="harness") as ctx:
        commands = {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}
        out = ["| command | what it does |", "| --- | --- |"]
        out += [f"| [`{name}`](#harness-{name}) | {(c.help or '').strip()} |" for name, c in commands.items()]
        out.append("")
        for name, command in commands.items():
            sub = context(command, info_name=name, parent=ctx)
            usage = " ".join(["harness", name, *command.collect_usage_pieces(sub)])
            out += [f"## `harness {name}`", "", (command.help or "").strip(), "", "```text", usage, "```", ""]
            out += ["| argument or option | meaning |", "| --- | --- |"]
            for param in command.get_params(sub):
                record = param.get_help_record(sub)
                if record is not None:
                    flag, help_text = (part.replace("|", "\\|") for part in record)
                    out.append(f"| `{flag}` | {help_text} |")
            out.append("")
    return "\n".join(out)
