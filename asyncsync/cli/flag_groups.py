"""Option groups for Typer commands: a set of options declared once, received as one value.

Typer builds a command's options from ``inspect.signature(callback)``, so a set of options that
many commands share (skopeo's registry flags, the retry flags) would otherwise be spelt out in
every signature and reassembled by hand in every body. A :class:`FlagGroup` holds the options
once, with a ``build`` function that packs their values into one object; a command asks for that
object with a placeholder parameter and the :func:`with_flag_groups` decorator::

    RETRY = FlagGroup(
        RetryFlags,
        (
            flag_option("retry_times", Annotated[int | None, typer.Option("--retry-times")], None),
            flag_option("retry_delay", Annotated[str | None, typer.Option("--retry-delay")], None),
        ),
        lambda values: RetryFlags(times=values["retry_times"], delay=values["retry_delay"]),
    )

    @app.command("inspect")
    @with_flag_groups
    def inspect(
        image: str,
        *,
        raw: Annotated[bool, typer.Option("--raw")] = False,
        retry: Annotated[RetryFlags, RETRY],  # --retry-times and --retry-delay stand here
    ) -> None:
        policy = retry.policy()

Contract of :func:`with_flag_groups`:

* A placeholder is a keyword-only parameter (after ``*``) without a default, annotated
  ``Annotated[T, group]`` where ``group`` is a ``FlagGroup[T]`` and ``T`` is exactly the group's
  ``value_type``. Annotations are evaluated in the command's module, as Typer does.
* The decorated function's ``__signature__`` is the command's own with each placeholder replaced,
  in place, by the group's options: ``--help`` lists them where the placeholder stands.
* On a call, the group's option values (their defaults where a caller left them out) are taken out
  of the keyword arguments, passed to ``group.build`` and the result is passed as the placeholder.
  ``build`` only packs values; validating them is the command's job inside its ``run()``, where a
  bad value becomes a one-line error instead of a traceback.
* Decoration fails with :class:`TypeError` when the command has no placeholder, a placeholder is
  misdeclared, or two parameters (the command's own, placeholders, group options) share a name or
  a command-line spelling such as ``--creds``.

The decorated function is typed ``Callable[..., R]``: its parameters are computed at run time
(placeholders out, group options in), which neither a ``ParamSpec`` nor ``Concatenate`` (it can
only add leading positional parameters) can express. mypy still checks the command's body against
the placeholder's declared type, and decoration checks that type against the group's.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from typer.models import ArgumentInfo, OptionInfo, ParameterInfo

T = TypeVar("T")
R = TypeVar("R")

_KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY
_EMPTY = inspect.Parameter.empty


def flag_option(name: str, annotation: object, default: object) -> inspect.Parameter:
    """One option of a group: the keyword-only parameter ``name: annotation = default``.

    ``annotation`` is what a command would write, ``Annotated[type, typer.Option(...)]``.
    """
    return inspect.Parameter(name, _KEYWORD_ONLY, default=default, annotation=annotation)


@dataclass(frozen=True, slots=True, eq=False)
class FlagGroup(Generic[T]):
    """Options declared once and delivered to a command as one ``value_type`` object.

    ``options`` are keyword-only parameters with defaults and a ``typer.Option`` in their
    ``Annotated`` annotation (make them with :func:`flag_option`); their order is the order in
    ``--help``. ``build`` receives ``{option name: value}`` for exactly those options and returns
    the object; it must not raise for user input (see the module docstring). The values arrive as
    click converted them, one type per option, hence ``Any`` in the mapping.
    """

    value_type: type[T]
    options: tuple[inspect.Parameter, ...]
    build: Callable[[Mapping[str, Any]], T]

    def __post_init__(self) -> None:
        if not self.options:
            raise TypeError("a flag group needs at least one option")
        claims = _Claims()
        for option in self.options:
            if option.kind is not _KEYWORD_ONLY or option.default is _EMPTY:
                raise TypeError(f"group option {option.name!r} must be keyword-only with a default")
            if not isinstance(_typer_info(option), OptionInfo):
                raise TypeError(f"group option {option.name!r} must be annotated with a typer.Option")
            claims.claim(option, "the group")

    def value(self, **values: Any) -> T:
        """The object for these option values (defaults for the options not named)."""
        unknown = set(values) - {option.name for option in self.options}
        if unknown:
            raise TypeError(f"not options of this group: {', '.join(sorted(unknown))}")
        return self.build({option.name: values.get(option.name, option.default) for option in self.options})


def joined_groups(value_type: type[T], parts: Mapping[str, FlagGroup[Any]]) -> FlagGroup[T]:
    """One group made of others, for flag sets that several commands take together.

    Its options are the parts' options, part after part (so their --help order); its value is
    ``value_type(**{name: part's value})``, one field per entry of ``parts``. A clash between
    the parts' names or spellings is a :class:`TypeError`, as within one group.
    """
    joined = tuple(parts.items())

    def build(values: Mapping[str, Any]) -> T:
        return value_type(
            **{
                name: part.build({option.name: values[option.name] for option in part.options})
                for name, part in joined
            }
        )

    return FlagGroup(value_type, tuple(option for _, part in joined for option in part.options), build)


def with_flag_groups(command: Callable[..., R]) -> Callable[..., R]:
    """``command`` with each ``Annotated[T, FlagGroup[T]]`` placeholder expanded into the group's
    options (the contract is in the module docstring); raises :class:`TypeError` when misused."""
    signature = inspect.signature(command, eval_str=True)
    groups: dict[str, FlagGroup[Any]] = {}
    parameters: list[inspect.Parameter] = []
    claims = _Claims()
    for param in signature.parameters.values():
        group = _placeholder_group(command, param)
        if group is None:
            claims.claim(param, "the command")
            parameters.append(param)
            continue
        claims.claim_name(param.name, "the command")
        groups[param.name] = group
        for option in group.options:
            claims.claim(option, f"the group of {param.name!r}")
            parameters.append(option)
    if not groups:
        raise TypeError(f"{command.__qualname__}: no Annotated[T, FlagGroup] parameter to expand")

    @functools.wraps(command)
    def expanded(*args: Any, **kwargs: Any) -> R:
        for name, group in groups.items():
            values = {option.name: kwargs.pop(option.name, option.default) for option in group.options}
            kwargs[name] = group.build(values)
        return command(*args, **kwargs)

    new_signature = signature.replace(parameters=parameters)
    # Functions take attributes at run time; inspect.signature (so Typer) reads this one (PEP 362).
    expanded.__signature__ = new_signature  # type: ignore[attr-defined]
    # Typer also calls typing.get_type_hints(); give it the expanded, already evaluated annotations
    # rather than the command's, which name the placeholders.
    expanded.__annotations__ = {p.name: p.annotation for p in parameters if p.annotation is not _EMPTY}
    if signature.return_annotation is not _EMPTY:
        expanded.__annotations__["return"] = signature.return_annotation
    return expanded


def _placeholder_group(command: Callable[..., object], param: inspect.Parameter) -> FlagGroup[Any] | None:
    """The group ``param`` stands for, ``None`` for an ordinary parameter; TypeError if misdeclared."""
    if typing.get_origin(param.annotation) is not typing.Annotated:
        return None
    base, *metadata = typing.get_args(param.annotation)
    found = [item for item in metadata if isinstance(item, FlagGroup)]
    if not found:
        return None
    where = f"{command.__qualname__}: parameter {param.name!r}"
    if len(found) > 1 or any(isinstance(item, ParameterInfo) for item in metadata):
        raise TypeError(f"{where}: a placeholder takes one FlagGroup and nothing else")
    group = found[0]
    if param.kind is not _KEYWORD_ONLY or param.default is not _EMPTY:
        raise TypeError(f"{where}: a placeholder must be keyword-only (after *) and have no default")
    if base is not group.value_type:
        raise TypeError(
            f"{where}: annotated {getattr(base, '__name__', base)} but its group delivers "
            f"{group.value_type.__name__}"
        )
    return group


def _typer_info(param: inspect.Parameter) -> ParameterInfo | None:
    """The ``typer.Option``/``typer.Argument`` of ``param``, in its annotation or as its default."""
    if typing.get_origin(param.annotation) is typing.Annotated:
        for item in typing.get_args(param.annotation)[1:]:
            if isinstance(item, ParameterInfo):
                return item
    return param.default if isinstance(param.default, ParameterInfo) else None


def _spellings(param: inspect.Parameter) -> Iterable[str]:
    """The command-line spellings Typer gives ``param`` (``--tls-verify``, ``--no-tls-verify``, ``-q``)."""
    info = _typer_info(param)
    if isinstance(info, ArgumentInfo) or (info is None and param.default is _EMPTY):
        return ()  # a positional argument
    declarations: list[str] = []
    if isinstance(info, OptionInfo):
        # In Annotated[..., typer.Option("--x", "-x")] the first spelling lands in .default.
        if typing.get_origin(param.annotation) is typing.Annotated and isinstance(info.default, str):
            declarations.append(info.default)
        declarations.extend(info.param_decls or ())
    spellings = [part.strip() for text in declarations for part in text.split("/")]
    spellings = [text for text in spellings if text.startswith("-")]
    return spellings or (f"--{param.name.replace('_', '-')}",)


class _Claims:
    """Parameter names and command-line spellings taken so far, and by whom."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._spellings: dict[str, str] = {}

    def claim_name(self, name: str, owner: str) -> None:
        if name in self._names:
            raise TypeError(f"parameter {name!r} of {owner} clashes with one of {self._names[name]}")
        self._names[name] = owner

    def claim(self, param: inspect.Parameter, owner: str) -> None:
        self.claim_name(param.name, owner)
        for spelling in _spellings(param):
            if spelling in self._spellings:
                raise TypeError(
                    f"option {spelling} of {owner} ({param.name!r}) clashes with one of "
                    f"{self._spellings[spelling]}"
                )
            self._spellings[spelling] = f"{owner} ({param.name!r})"
