"""CLI options generated from a role's settings fields (issue 17 move 3).

``settings_command(EdgeSettings)`` turns a function ``body(flags)`` into a typer command with
one option per settings field: the flag name from the field name (``batch_size`` ->
``--batch-size``; a field may keep an older flag name as well, ``names``), its type (bool as
``--x/--no-x``, ``Literal`` as a choice, numbers as numbers, everything else a string that the
settings class parses), and a help text made of the field's description, its environment name
and its default. Adding a field to the settings class is then the only step for a new flag.

Every option defaults to None, and ``body`` gets only the flags given on the command line, as
settings keyword arguments: a flag wins over the environment, the environment over the default,
and the role can tell which values came from flags (Dapr secrets go between the two).
The environment is read by the settings class alone, never by click (no ``envvar``).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Collection, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings


def env_names(cls: type[BaseSettings], field: str, info: FieldInfo) -> list[str]:
    """The environment variables a field is read from, as pydantic-settings reads them."""
    alias = info.validation_alias
    if isinstance(alias, str):
        return [alias.upper()]
    if isinstance(alias, AliasChoices):
        return [str(a).upper() for a in alias.choices]
    prefix = str(cls.model_config.get("env_prefix", ""))
    return [(prefix + (info.alias or field)).upper()]


def _flag_type(annotation: Any) -> tuple[Any, bool]:
    """(the option's type, whether it is a boolean switch) of a field's annotation."""
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if annotation is bool:
        return bool, True
    if annotation in (int, float) or get_origin(annotation) is Literal:
        return annotation, False
    return str, False  # str, Path, SecretStr, JSON dicts: the settings class parses the text


def _default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return ""
    value = info.default
    if value is PydanticUndefined:
        return ", required"
    if value is None:
        return ", default none"
    if isinstance(value, SecretStr):
        return ", default set"
    if isinstance(value, bool):
        return ", default on" if value else ", default off"
    if value == "":
        return ", default empty"
    return f", default {value}"


def help_text(cls: type[BaseSettings], field: str, info: FieldInfo) -> str:
    description = (info.description or field.replace("_", " ")).rstrip()
    envs = " or ".join(env_names(cls, field, info))
    return f"{description} (env {envs}{_default_text(info)})"


def _parameter(
    cls: type[BaseSettings], field: str, info: FieldInfo, flag: str | None, panel: str | None
) -> inspect.Parameter:
    kind, switch = _flag_type(info.annotation)
    dashed = field.replace("_", "-")
    if switch:
        decls = [f"--{dashed}/--no-{dashed}"]
        if flag:
            decls.insert(0, f"--{flag}/--no-{flag}")
    else:
        decls = [f"--{dashed}"] if not flag else [f"--{flag}", f"--{dashed}"]
    option = typer.Option(
        *decls, help=help_text(cls, field, info), show_default=False, rich_help_panel=panel
    )
    return inspect.Parameter(
        (flag or field).replace("-", "_"),
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[kind | None, option],
    )


def _panel(cls: type[BaseSettings], field: str, panels: Mapping[type, str]) -> str | None:
    for base in cls.__mro__:
        if field in inspect.get_annotations(base):
            return panels.get(base)
    return None


def settings_command(
    cls: type[BaseSettings],
    *,
    names: Mapping[str, str] | None = None,
    skip: Collection[str] = (),
    panels: Mapping[type, str] | None = None,
) -> Callable[[Callable[[dict[str, Any]], None]], Callable[..., None]]:
    """A decorator: ``body(flags)`` becomes a command with one option per field of ``cls``.

    ``names``: field -> older flag name kept as the first name (``node_labels`` -> ``labels``);
    ``skip``: fields with no flag; ``panels``: a ``--help`` section per class declaring fields.
    """
    names = dict(names or {})
    fields = {f: i for f, i in cls.model_fields.items() if f not in skip}
    params = [
        _parameter(cls, f, i, names.get(f), _panel(cls, f, panels or {})) for f, i in fields.items()
    ]
    field_of = {p.name: f for p, f in zip(params, fields, strict=True)}

    def wrap(body: Callable[[dict[str, Any]], None]) -> Callable[..., None]:
        def command(**kwargs: Any) -> None:
            body({field_of[k]: v for k, v in kwargs.items() if v is not None})

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__name__ = body.__name__
        command.__qualname__ = body.__qualname__
        command.__doc__ = body.__doc__
        command.__module__ = body.__module__
        command.field_of = field_of  # type: ignore[attr-defined]
        return command

    return wrap
