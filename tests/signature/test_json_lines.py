"""json_lines: values keep their lines; syntax errors and duplicate keys name the line."""

from __future__ import annotations

import pytest

from asyncsync.signature.json_lines import JSONLinesError, parse


def test_lines_of_values_and_keys() -> None:
    root = parse('{\n  "a": [\n    1,\n    {"b": "x\\n"}\n  ],\n  "c": null\n}')
    assert root.line == 1
    assert root.key_lines == {"a": 2, "c": 6}
    items = root.value["a"].value
    assert [item.line for item in items] == [3, 4]
    assert items[1].value["b"].value == "x\n"
    assert root.value["c"].kind == "null"
    assert parse("[1.5, -2, true]").value[0].value == 1.5


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{\n"a": 1,\n"a": 2}', 3, 'Duplicate key "a"'),
        ('{\n"a": [1,\n 2,,]}', 3, "Expecting value"),
        ('{"a":\n NaN}', 2, "invalid value"),
        ("", 1, "Expecting value"),
    ],
)
def test_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(JSONLinesError) as caught:
        parse(text)
    assert caught.value.line == line
    assert message in caught.value.message
