"""Every finkctl subcommand is documented: a line in ``finkctl --help`` and a text of its
own ``--help`` (the commands built by ``cli.options.add_command`` take both from their
``run`` docstring), and the data commands all have ``--json``."""

from __future__ import annotations

import argparse

import pytest

from fink_client.cli.main import SUBCOMMANDS, build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: action.choices[name] for name in SUBCOMMANDS}


def _summaries() -> dict[str, str]:
    parser = build_parser()
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help or "" for choice in action._choices_actions}


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_has_a_summary_and_a_description(name: str) -> None:
    summary = _summaries()[name]
    assert summary and "\n" not in summary
    assert summary[0].islower() and not summary.endswith(".")  # argparse's own style
    assert (_subparsers()[name].description or "").strip()


@pytest.mark.parametrize("name", ["topics", "stream", "transfer", "offsets", "show", "schema",
                                  "replay"])
def test_data_commands_have_json_and_run(name: str) -> None:
    parser = _subparsers()[name]
    assert "--json" in parser._option_string_actions
    assert callable(parser.get_default("func"))
