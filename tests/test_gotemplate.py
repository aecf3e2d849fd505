"""Go value printing/JSON and the --format template subset (expected strings checked against Go)."""

from __future__ import annotations

from typing import Any

import pytest

from asyncsync.errors import UsageError
from asyncsync.gotemplate import (
    NIL_MAP,
    NIL_POINTER,
    NIL_SLICE,
    GoStruct,
    GoTime,
    TemplateError,
    go_json,
    go_print,
    is_json_format,
    normalize_format,
    render_template,
)

DATA = GoStruct(
    "inspect.Output",
    {
        "Name": "h/repo",
        "Tags": ["a", "b"],
        "Labels": {"z": "1", "a<b": "x&y", "org.k": "v"},
        "Empty": NIL_MAP,
        "Env": NIL_SLICE,
        "Created": GoTime("2023-01-01T00:00:00Z", "2023-01-01 00:00:00 +0000 UTC"),
        "Missing": NIL_POINTER,
        "Size": 42,
        "Flag": False,
        "Layers": [GoStruct("L", {"D": "d1", "S": 1, "A": NIL_MAP})],
    },
)


def test_go_json_matches_marshal_indent() -> None:
    value = GoStruct("T", {"B": 1, "A": {"y": "2", "x": "<&>"}, "N": NIL_SLICE, "E": [], "U": "\u2028"})
    assert go_json(value) == '{"B":1,"A":{"x":"\\u003c\\u0026\\u003e","y":"2"},"N":null,"E":[],"U":"\\u2028"}'
    assert go_json(value, indent=4).splitlines()[:3] == ["{", '    "B": 1,', '    "A": {']
    assert go_json({"k": "<"}, escape_html=False) == '{"k":"<"}'
    assert go_json("é") == '"é"'  # Go keeps UTF-8


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        ("text", "text"),
        (7, "7"),
        (True, "true"),
        (["a", "b"], "[a b]"),
        ({"b": "2", "a": "1"}, "map[a:1 b:2]"),
        (NIL_MAP, "map[]"),
        (NIL_SLICE, "[]"),
        (NIL_POINTER, "<nil>"),
        (GoStruct("S", {"x": "1", "y": NIL_MAP, "z": 3}), "{1 map[] 3}"),
        ([GoStruct("S", {"x": "a"})], "[{a}]"),
    ],
)
def test_go_print(value: Any, printed: str) -> None:
    assert go_print(value) == printed


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.Name}}", "h/repo"),
        ("{{ .Name }}", "h/repo"),
        ("{{.Labels}}", "map[a<b:x&y org.k:v z:1]"),
        ("{{.Labels.z}}", "1"),
        ("{{.Labels.nope}}", "<no value>"),
        ("{{.Empty.nope}}", "<no value>"),
        ('{{index .Labels "nope"}}', ""),
        ('{{index .Labels "org.k"}}', "v"),
        ("{{index .Tags 1}}", "b"),
        ("{{json .Labels}}", '{"a<b":"x&y","org.k":"v","z":"1"}'),
        ("{{.Labels | json}}", '{"a<b":"x&y","org.k":"v","z":"1"}'),
        ("{{json .Env}}", "null"),
        ("{{json .Created}}", '"2023-01-01T00:00:00Z"'),
        ("{{.Created}}", "2023-01-01 00:00:00 +0000 UTC"),
        ("{{.Missing}}", "<nil>"),
        ("{{range .Tags}}{{.}} {{end}}", "a b "),
        ("{{range .Env}}x{{else}}none{{end}}", "none"),
        ("{{range .Labels}}{{.}},{{end}}", "x&y,v,1,"),
        ("{{range .Layers}}{{.D}}:{{.S}}{{end}}", "d1:1"),
        ("{{if .Flag}}y{{else if .Size}}size{{else}}n{{end}}", "size"),
        ("{{if .Env}}y{{else}}n{{end}}", "n"),
        ("{{with .Labels}}{{.z}}{{end}}", "1"),
        ("{{len .Tags}} {{len .Labels}} {{len .Env}}", "2 3 0"),
        ('{{join .Tags ","}}', "a,b"),
        ("{{upper .Name}} {{lower (upper .Name)}}", "H/REPO h/repo"),
        ("{{print .Size .Size}} {{print .Name .Size}}", "42 42 h/repo42"),
        ('{{eq .Name "h/repo"}} {{ne .Size 42}} {{not .Flag}}', "true false true"),
        ("{{and .Name .Size}} {{or .Flag .Name}}", "42 h/repo"),
        ("a  {{- .Size -}}  b", "a42b"),
        ("x{{/* comment */}}y", "xy"),
        ("{{`raw\\n`}}", "raw\\n"),
        ('{{"quoted\\tstring"}}', "quoted\tstring"),
        ("{{.}}", go_print(DATA)),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render_template(template, DATA) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{.Nope}}", "can't evaluate field Nope in type inspect.Output"),
        ("{{.Name.X}}", "can't evaluate field X in type string"),
        ('{{printf "%s" .Name}}', 'function "printf" not defined'),
        ("{{$x := .Name}}", "variables"),
        ("{{.Name", "unclosed action"),
        ("{{range .Tags}}x", "missing {{end}}"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{else}}", "unexpected {{else}}"),
        ('{{template "x"}}', "not supported"),
        ("{{index .Tags 5}}", "index out of range"),
        ("{{range .Name}}{{end}}", "range can't iterate"),
        ("{{.Name .Size}}", "non-function"),
        ("{{len}}", "wrong number of arguments"),
        ("{{(.Name}}", "unclosed left paren"),
    ],
)
def test_errors_are_clear_usage_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        render_template(template, DATA)
    assert message in str(info.value)
    assert str(info.value).startswith("--format: template: ")
    assert isinstance(info.value, UsageError)


def test_normalize_and_json_detection() -> None:
    assert normalize_format("{{.Name}}") == "{{.Name}}\n"
    assert normalize_format("a\\tb\\n") == "a\tb\n"
    with pytest.raises(TemplateError, match="table"):
        normalize_format("table {{.Name}}")
    for text in ("json", " {{json}} ", "{{ json. }}"):
        assert is_json_format(text)
    assert not is_json_format("{{json .}}")
