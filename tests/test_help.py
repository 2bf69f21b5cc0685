"""Every --help renders, reads as plain text (no doubled or unexpanded % signs, no empty help), and names
every option it has."""

from __future__ import annotations

import argparse

import pytest

from cusweep.cli import COMMANDS, build_parser, main


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_has_a_help_page():
    assert set(subparsers(build_parser())) == {cmd.NAME for cmd in COMMANDS}


@pytest.mark.parametrize("name", [None, *[cmd.NAME for cmd in COMMANDS]])
def test_help_text_has_no_glitches(name, capsys):
    argv = ["--help"] if name is None else [name, "--help"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: cusweep")
    for glitch in ("%%", "%(", "%s", "None", "  .", " ,"):
        assert glitch not in text, (name, glitch)
    if name is not None:
        parser = subparsers(build_parser())[name]
        for action in parser._actions:
            assert action.help, (name, action.dest)  # every option says what it does
            for flag in action.option_strings:
                assert flag in text, (name, flag)
