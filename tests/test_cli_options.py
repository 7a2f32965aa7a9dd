"""Command-line options defined once: one shape parser for the library and
every command, shared option helpers, help text owned by each command module,
and a command list that fails loudly when a module is missing."""

from __future__ import annotations

import argparse
import inspect
import shlex
import sys

import pytest

from gennape import cli
from gennape.cg.errors import GennapeError
from gennape.cg.import_options import UNKNOWN_OPS_CHOICES, InputShapeError, parse_input_shape
from gennape.cli import main
from gennape.transfer.predict import DEFAULT_CHUNK


@pytest.mark.parametrize("text,shape", [
    ("1x3x224x224", (1, 3, 224, 224)), ("1,3,32,32", (1, 3, 32, 32)), ("3 224 224", (3, 224, 224)),
    ("3X32x32", (3, 32, 32)), ([1, 3, 8, 8], (1, 3, 8, 8)), ((8, 16), (8, 16)), (None, None),
])
def test_parse_input_shape(text, shape):
    assert parse_input_shape(text) == shape  # the batch dimension is added by the importer, by rank


@pytest.mark.parametrize("text", ["3,a,4", "0,3", "", "1x-3", ["a"]])
def test_parse_input_shape_errors_are_user_errors_and_value_errors(text):
    with pytest.raises(InputShapeError, match="input shape") as exc:
        parse_input_shape(text)
    assert isinstance(exc.value, GennapeError) and isinstance(exc.value, ValueError)


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _option(parser: argparse.ArgumentParser, flag: str):
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_shared_options_are_the_same_everywhere():
    """``--input-shape``, ``--checkpoint`` and ``--unknown-ops`` read the same
    (help, type, choices, default) in every command that has them; the shape
    goes through the one parser and the chunk size defaults to DEFAULT_CHUNK."""
    parsers = _subparsers()
    for flag, commands in {"--input-shape": ("convert", "predict", "evaluate", "finetune"),
                           "--checkpoint": ("predict", "evaluate", "finetune"),
                           "--unknown-ops": ("convert", "predict", "evaluate")}.items():
        actions = [_option(parsers[c], flag) for c in commands]
        assert all(actions), flag
        assert len({(a.type, a.default, a.choices, a.metavar) for a in actions}) == 1, flag
        if flag != "--checkpoint":  # finetune says where it starts from
            assert len({a.help for a in actions}) == 1, flag
    assert _option(parsers["predict"], "--unknown-ops").choices == UNKNOWN_OPS_CHOICES
    assert _option(parsers["predict"], "--chunk-size").default == DEFAULT_CHUNK
    from gennape.transfer import predict
    from gennape.transfer.api import predict_onnx
    from gennape.transfer.evaluate import evaluate_labels

    for fn in (predict_onnx, evaluate_labels, predict.predict_files):
        assert inspect.signature(fn).parameters["chunk_size"].default == DEFAULT_CHUNK
    assert not hasattr(predict, "parse_input_shape")  # one parser, in cg
    from gennape.cg.onnx_import import load

    assert load.parse_input_shape is parse_input_shape


def test_input_shape_arrives_parsed_and_bad_values_are_usage_errors(capsys):
    args = cli.build_parser().parse_args(["predict", "x.onnx", "--input-shape", "3x32x32", "--workers", "2"])
    assert args.input_shape == (3, 32, 32) and args.workers == 2
    for argv, flag in ((["predict", "x.onnx", "--input-shape", "3,a"], "--input-shape"),
                       (["predict", "x.onnx", "--chunk-size", "0"], "--chunk-size"),
                       (["predict", "x.onnx", "--workers", "0"], "--workers")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and err[-1].startswith(f"gennape predict: error: argument {flag}:")


def test_three_numbers_on_a_rank_3_input_are_not_given_a_batch(tmp_path, capsys):
    """The rank decides whether a batch dimension is added: ``1x8x16`` on a
    sequence model ``(N, 8, T)`` stays rank 3 (a count-based parser made it rank 4)."""
    import onnx
    from _onnx_graphs import model, node

    path = tmp_path / "seq.onnx"
    onnx.save(model([node("Relu", ["x"], ["y"])], inputs=[("x", ("N", 8, "T"))]), path)
    assert main(["convert", str(path), "--input-shape", "1x8x16"]) == 0
    assert "input 8x16" in capsys.readouterr().out


def test_each_command_module_owns_its_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        module = cli.command_module(name)
        assert isinstance(module.HELP, str) and module.HELP.split()[0] in out
    assert isinstance(cli.COMMANDS, tuple)  # names only: the help text lives in the modules


def test_a_listed_command_without_its_module_is_an_error(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, "no_such_command"))
    with pytest.raises(ImportError, match=r"'no_such_command' is listed .* gennape/commands/no_such_command.py "
                                          r"is missing"):
        cli.build_parser()


def test_a_command_module_without_help_is_an_error(monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "gennape.commands.half_done", types.ModuleType("gennape.commands.half_done"))
    monkeypatch.setattr(cli, "COMMANDS", ("half_done",))
    with pytest.raises(ImportError, match="half_done.py lacks HELP, add_arguments, run"):
        cli.build_parser()


def test_the_recorded_command_is_the_argv_main_received(monkeypatch):
    """Checkpoints record what ``main`` was given, not ``sys.argv`` (which is
    pytest's here, or a notebook's)."""
    from gennape.commands import _options

    seen = {}
    monkeypatch.setattr(sys, "argv", ["pytest", "-q", "something else"])
    monkeypatch.setattr(cli, "command_module", _spy_module(seen, cli.command_module))
    argv = ["export", "--family", "nb201", "--arch", "|a b|", "out dir/x.onnx"]
    assert main(argv) == 0
    assert _options.command_line(seen["args"]) == "gennape " + shlex.join(argv)


def _spy_module(seen: dict, real):
    def command_module(name):
        module = real(name)
        if name != "export":
            return module
        import types

        spy = types.SimpleNamespace(HELP=module.HELP, add_arguments=module.add_arguments,
                                    run=lambda args: seen.setdefault("args", args) and 0)
        return spy

    return command_module
