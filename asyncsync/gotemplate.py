"""Go values as skopeo prints them: ``encoding/json`` output and a ``text/template`` subset.

skopeo formats ``inspect`` results with Go's ``json.MarshalIndent`` and ``--format`` templates.
To print the same bytes, this module models the few Go types those results contain
(:class:`GoStruct` with ordered fields, :class:`GoTime`, typed nils, ``str``/``int``/``bool``,
``list`` for slices and ``dict`` for ``map[string]...``) and renders them the Go way:

* :func:`go_json` - Go's JSON: struct fields in order, map keys sorted, ``<``, ``>``, ``&``,
  U+2028 and U+2029 escaped when ``escape_html`` (``json.Marshal`` does that by default).
* :func:`go_print` - ``fmt``'s ``%v`` as templates print values: ``map[k:v]``, ``[a b]``,
  ``{f1 f2}``, ``<nil>``, and ``<no value>`` for a missing map key.
* :func:`render_template` - the subset of ``text/template`` that ``--format`` needs: text,
  ``{{.Field.Sub}}``, ``{{.}}``, pipelines with ``|``, parentheses, string/number/bool
  literals, ``{{range}}``/``{{if}}``/``{{with}}`` with ``{{else}}``/``{{else if}}``/``{{end}}``,
  comments, ``{{-``/``-}}`` trimming, and the functions in :data:`FUNCTIONS` (Go's builtins
  ``index``, ``len``, ``print``, ``println``, ``eq``, ``ne``, ``not``, ``and``, ``or`` and
  podman's ``json``, ``join``, ``lower``, ``upper``). Anything else (variables, ``printf``,
  ``define``/``template``/``block``) raises :class:`~asyncsync.errors.UsageError` naming it;
  nothing is silently printed wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from asyncsync.errors import UsageError


@dataclass(frozen=True, slots=True)
class GoStruct:
    """A Go struct value: ``type_name`` (for error messages) and fields in declaration order."""

    type_name: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class GoTime:
    """A ``time.Time``: ``rfc3339`` is its JSON form, ``text`` what ``String()`` returns."""

    rfc3339: str
    text: str


class _Nil:
    """A typed Go nil: prints as ``printed``, is ``null`` in JSON, empty and false in templates."""

    __slots__ = ("printed",)

    def __init__(self, printed: str) -> None:
        self.printed = printed

    def __repr__(self) -> str:
        return f"<nil {self.printed}>"


NIL_MAP = _Nil("map[]")
NIL_SLICE = _Nil("[]")
NIL_POINTER = _Nil("<nil>")


class _Missing:
    """The result of a missing map key (Go's invalid ``reflect.Value``)."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()


def _plain(value: Any) -> Any:
    """The JSON-ready Python form of a Go value."""
    if isinstance(value, GoStruct):
        return {k: _plain(v) for k, v in value.fields.items()}
    if isinstance(value, GoTime):
        return value.rfc3339
    if isinstance(value, _Nil | _Missing):
        return None
    if isinstance(value, dict):
        return {k: _plain(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def go_json(value: Any, *, indent: int | None = None, escape_html: bool = True) -> str:
    """Encode like Go's ``json.Marshal`` (``indent`` given: ``json.MarshalIndent(v, "", " "*indent)``)."""
    separators = (",", ": ") if indent is not None else (",", ":")
    text = json.dumps(_plain(value), indent=indent, ensure_ascii=False, separators=separators)
    # These characters only occur inside JSON strings, so replacing them textually is safe.
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if escape_html:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text


def go_print(value: Any) -> str:
    """``fmt.Sprint(value)`` for the modelled Go types (what ``{{.X}}`` prints)."""
    if isinstance(value, _Missing):
        return "<no value>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, GoTime):
        return value.text
    if isinstance(value, _Nil):
        return value.printed
    if isinstance(value, GoStruct):
        return "{" + " ".join(go_print(v) for v in value.fields.values()) + "}"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    return str(value)


def _type_name(value: Any) -> str:
    if isinstance(value, GoStruct):
        return value.type_name
    if isinstance(value, GoTime):
        return "time.Time"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, dict) or value is NIL_MAP:
        return "map[string]string"
    if isinstance(value, list | tuple) or value is NIL_SLICE:
        return "[]string"
    return "interface {}"


def truthy(value: Any) -> bool:
    """Go template truth: false, 0, "", nil and empty collections are false."""
    if isinstance(value, _Nil | _Missing) or value is None:
        return False
    if isinstance(value, bool | int | str | list | tuple | dict):
        return bool(value)
    return True


class TemplateError(UsageError):
    """A ``--format`` template that does not parse or cannot be executed."""

    def __init__(self, message: str) -> None:
        super().__init__(f"--format: template: {message}")


# ---------------------------------------------------------------------------------- functions


def _fn_index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict) or item is NIL_MAP:
            item = item.get(key, "") if isinstance(item, dict) else ""
        elif isinstance(item, list | tuple) and isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < len(item):
                raise TemplateError(f"error calling index: index out of range: {key}")
            item = item[key]
        else:
            raise TemplateError(f"error calling index: cannot index {_type_name(item)} with {key!r}")
    return item


def _fn_len(item: Any) -> int:
    if isinstance(item, str | list | tuple | dict):
        return len(item)
    if isinstance(item, _Nil):
        return 0
    raise TemplateError(f"error calling len: len of type {_type_name(item)}")


def _fn_print(*args: Any) -> str:
    out = []
    for i, arg in enumerate(args):
        # fmt.Sprint adds a space between operands when neither is a string.
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_print(arg))
    return "".join(out)


def _fn_join(items: Any, sep: str) -> str:
    if isinstance(items, _Nil):
        return ""
    if not isinstance(items, list | tuple):
        raise TemplateError(f"error calling join: cannot join {_type_name(items)}")
    return sep.join(go_print(i) for i in items)


def _fn_and(*args: Any) -> Any:
    for arg in args:
        if not truthy(arg):
            return arg
    return args[-1]


def _fn_or(*args: Any) -> Any:
    for arg in args:
        if truthy(arg):
            return arg
    return args[-1]


def _fn_eq(first: Any, *others: Any) -> bool:
    return any(_plain(first) == _plain(o) for o in others)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "and": _fn_and,
    "eq": _fn_eq,
    "index": _fn_index,
    "join": _fn_join,
    "json": lambda v: go_json(v, escape_html=False),
    "len": _fn_len,
    "lower": lambda s: go_print(s).lower(),
    "ne": lambda a, b: not _fn_eq(a, b),
    "not": lambda v: not truthy(v),
    "or": _fn_or,
    "print": _fn_print,
    "println": lambda *a: " ".join(go_print(v) for v in a) + "\n",
    "upper": lambda s: go_print(s).upper(),
}

# ---------------------------------------------------------------------------------- parsing

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<number>-?\d+)
      | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
      | (?P<dot>\.)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[|()])
      | (?P<other>\S+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Term:
    kind: str  # "field", "dot", "literal", "func", "pipe"
    value: Any


_Command = list[_Term]
_Pipeline = list[_Command]


@dataclass(slots=True)
class _Block:
    kind: str  # "root", "if", "range", "with"
    pipeline: _Pipeline | None
    body: list[Any]
    else_body: list[Any] | None = None


def _parse_pipeline(tokens: list[tuple[str, str]], pos: int, text: str) -> tuple[_Pipeline, int]:
    pipeline: _Pipeline = [[]]
    while pos < len(tokens):
        kind, value = tokens[pos]
        if kind == "punct" and value == ")":
            break
        pos += 1
        if kind == "punct" and value == "|":
            if not pipeline[-1]:
                raise TemplateError(f"missing command before '|' in {text!r}")
            pipeline.append([])
        elif kind == "punct" and value == "(":
            inner, pos = _parse_pipeline(tokens, pos, text)
            if pos >= len(tokens) or tokens[pos] != ("punct", ")"):
                raise TemplateError(f"unclosed left paren in {text!r}")
            pos += 1
            pipeline[-1].append(_Term("pipe", inner))
        elif kind == "string":
            try:
                pipeline[-1].append(_Term("literal", json.loads(value)))
            except ValueError:
                raise TemplateError(f"unsupported escape in string {value}") from None
        elif kind == "raw":
            pipeline[-1].append(_Term("literal", value[1:-1]))
        elif kind == "number":
            pipeline[-1].append(_Term("literal", int(value)))
        elif kind == "field":
            pipeline[-1].append(_Term("field", value[1:].split(".")))
        elif kind == "dot":
            pipeline[-1].append(_Term("dot", None))
        elif kind == "ident" and value in ("true", "false"):
            pipeline[-1].append(_Term("literal", value == "true"))
        elif kind == "ident" and value in FUNCTIONS:
            pipeline[-1].append(_Term("func", value))
        elif kind == "ident":
            raise TemplateError(f'function "{value}" not defined (supported: {", ".join(sorted(FUNCTIONS))})')
        elif value.startswith("$"):
            raise TemplateError(f"variables such as {value!r} are not supported")
        else:
            raise TemplateError(f"unexpected {value!r} in {text!r}")
    if not pipeline[-1]:
        raise TemplateError(f"missing value in {{{{{text}}}}}")
    return pipeline, pos


def _pipeline_of(text: str) -> _Pipeline:
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind is not None:
            tokens.append((kind, match.group(kind)))
    pipeline, pos = _parse_pipeline(tokens, 0, text)
    if pos != len(tokens):
        raise TemplateError(f"unexpected ')' in {text!r}")
    return pipeline


def _split(template: str) -> Iterator[tuple[str, str]]:
    """Yield ``("text", s)`` and ``("action", s)`` pieces, applying ``{{-`` / ``-}}`` trimming."""
    pos = 0
    trim_next = False
    while True:
        start = template.find("{{", pos)
        text = template[pos:] if start < 0 else template[pos:start]
        if trim_next:
            text = text.lstrip()
        if start < 0:
            if text:
                yield "text", text
            return
        end = template.find("}}", start + 2)
        if end < 0:
            raise TemplateError("unclosed action")
        action = template[start + 2 : end]
        if re.match(r"-\s", action):
            text, action = text.rstrip(), action[1:]
        trim_next = bool(re.search(r"\s-$", action))
        if trim_next:
            action = action[:-1]
        if text:
            yield "text", text
        yield "action", action.strip()
        pos = end + 2


def parse_template(template: str) -> _Block:
    """Parse ``template`` into a tree; raises :class:`TemplateError` for anything unsupported."""
    root = _Block("root", None, [])
    stack = [root]
    for kind, piece in _split(template):
        top = stack[-1]
        target = top.else_body if top.else_body is not None else top.body
        if kind == "text":
            target.append(piece)
            continue
        if piece.startswith("/*"):
            if not piece.endswith("*/"):
                raise TemplateError("unclosed comment")
            continue
        keyword, _, rest = piece.partition(" ")
        if keyword in ("if", "range", "with"):
            block = _Block(keyword, _pipeline_of(rest), [])
            target.append(block)
            stack.append(block)
        elif keyword == "else":
            if top.kind == "root" or top.else_body is not None:
                raise TemplateError("unexpected {{else}}")
            top.else_body = []
            sub_keyword, _, sub_rest = rest.strip().partition(" ")
            if sub_keyword == "if":
                # {{else if X}} is {{else}}{{if X}} whose {{end}} is shared with the outer block.
                block = _Block("if", _pipeline_of(sub_rest), [], None)
                top.else_body.append(block)
                stack.append(_Block("elseif", None, []))
                stack.append(block)
            elif rest.strip():
                raise TemplateError(f"unsupported {{{{else {rest.strip()}}}}}")
        elif keyword == "end":
            if top.kind == "root":
                raise TemplateError("unexpected {{end}}")
            stack.pop()
            while stack[-1].kind == "elseif":
                stack.pop()
                stack.pop()
        elif keyword in ("define", "template", "block", "break", "continue"):
            raise TemplateError(f"{{{{{keyword}}}}} is not supported")
        else:
            target.append(_pipeline_of(piece))
    if len(stack) != 1:
        raise TemplateError(f"missing {{{{end}}}} for {{{{{stack[-1].kind}}}}}")
    return root


# ---------------------------------------------------------------------------------- execution


def _field(value: Any, name: str) -> Any:
    if isinstance(value, GoStruct):
        if name not in value.fields:
            raise TemplateError(f"can't evaluate field {name} in type {value.type_name}")
        return value.fields[name]
    if isinstance(value, dict):
        return value.get(name, MISSING)
    if value is NIL_MAP:
        return MISSING
    raise TemplateError(f"can't evaluate field {name} in type {_type_name(value)}")


def _term(term: _Term, dot: Any) -> Any:
    if term.kind == "dot":
        return dot
    if term.kind == "literal":
        return term.value
    if term.kind == "pipe":
        return _run_pipeline(term.value, dot)
    value = dot
    for name in term.value:
        value = _field(value, name)
    return value


def _run_pipeline(pipeline: _Pipeline, dot: Any) -> Any:
    result: Any = MISSING
    for i, command in enumerate(pipeline):
        head, args = command[0], [_term(t, dot) for t in command[1:]]
        if i:
            args.append(result)
        if head.kind == "func":
            try:
                result = FUNCTIONS[head.value](*args)
            except TypeError:
                raise TemplateError(f"wrong number of arguments for {head.value}") from None
        elif args:
            raise TemplateError("can't give an argument to a non-function")
        else:
            result = _term(head, dot)
    return result


def _iterate(value: Any) -> Sequence[Any]:
    if isinstance(value, list | tuple):
        return value
    if isinstance(value, dict):
        return [value[k] for k in sorted(value)]
    if isinstance(value, _Nil | _Missing):
        return []
    raise TemplateError(f"range can't iterate over {go_print(value)}")


def _execute(nodes: list[Any], dot: Any, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, list):
            out.append(go_print(_run_pipeline(node, dot)))
        else:
            assert node.pipeline is not None
            value = _run_pipeline(node.pipeline, dot)
            if node.kind == "range":
                items = _iterate(value)
                for item in items:
                    _execute(node.body, item, out)
                if not items and node.else_body is not None:
                    _execute(node.else_body, dot, out)
            elif truthy(value):
                _execute(node.body, value if node.kind == "with" else dot, out)
            elif node.else_body is not None:
                _execute(node.else_body, dot, out)


def normalize_format(text: str) -> str:
    """What skopeo does to ``--format``: ``\\t``/``\\n`` escapes become characters, a newline ends it."""
    if text.startswith("table "):
        raise TemplateError("'table' formats are not supported")
    text = text.replace("\\t", "\t").replace("\\n", "\n")
    return text if text.endswith("\n") else text + "\n"


def is_json_format(text: str) -> bool:
    """skopeo's ``report.IsJSON``: ``json`` or ``{{json}}`` ask for the default JSON output."""
    return bool(re.match(r"^\s*(json|{{\s*json\.?\s*}})\s*$", text))


def render_template(template: str, data: Any) -> str:
    """Execute a (normalised) template with ``data`` as dot; raises :class:`TemplateError`."""
    out: list[str] = []
    _execute(parse_template(template).body, data, out)
    return "".join(out)
