"""Message helpers: echoes of user input stay on one bounded line and keep what identifies it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ldns_framework.cli import main
from ldns_framework.errors import MAX_ECHO, shown_path


@given(st.text(min_size=1, max_size=2000))
def test_a_shown_path_is_one_bounded_line_that_keeps_its_end(path: str) -> None:
    text = shown_path(path)
    assert "\n" not in text and "\r" not in text
    assert len(text) <= 4 * MAX_ECHO * 4 + 40  # printable escapes may widen each kept character up to 4x
    if len(path) <= 4 * MAX_ECHO and path.isprintable():
        assert text == path
    if len(path) > 4 * MAX_ECHO and path[-20:].isprintable():
        assert text.endswith(path[-20:]) and "..." in text


def test_an_output_path_under_a_file_is_named_with_its_file_name_however_deep(tmp_path, capsys) -> None:
    deep = tmp_path.joinpath(*["nested-directory-with-a-long-name"] * 12)
    deep.mkdir(parents=True)
    blocker = deep / "notes.txt"
    blocker.write_text("mine")
    assert main(["sample", str(tmp_path), "--n", "1", "--out", str(blocker / "s.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "notes.txt is a file, not a directory" in err and blocker.read_text() == "mine"
