"""The family registry: one module per family, registered once, read by export and the benchmarks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gennape.cg.families import family_names, family_table, get_family
from gennape.cg.families.base import REGISTRY, register_family

ALL = ("nb101", "nb201", "nb301", "ofa_mbv3", "tnb101_macro", "tnb101_micro")


def test_every_family_module_registers_itself():
    assert family_names() == ALL
    for name in ALL:
        family = get_family(name)
        assert family.name == name and REGISTRY[name] is family
        assert family is __import__(f"gennape.cg.families.{name}", fromlist=["FAMILY"]).FAMILY
        assert family.title and family.summary and family.arch_help
        assert name in family_table() and family.summary in family_table()


def test_unknown_family_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        get_family("nb999")
    assert str(err.value) == f"unknown family 'nb999'; valid families: {', '.join(ALL)}"


def test_a_name_is_registered_once():
    family = type(get_family("nb201"))()
    with pytest.raises(ValueError, match="family 'nb201' is registered twice"):
        register_family(family)
    assert register_family(get_family("nb201")) is get_family("nb201")  # re-registering itself is a no-op


def test_export_family_choices_and_help_come_from_the_registry():
    from gennape.cli import build_parser

    parser = build_parser()
    export = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "export")[1]
    family = next(a for a in export._actions if a.dest == "family")
    assert tuple(family.choices) == family_names()
    help_text = export.format_help()
    for name in ALL:
        assert f"  {name}" in help_text and get_family(name).arch_help in help_text


def test_bad_family_error_lists_the_registry(capsys, tmp_path):
    from gennape.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["export", "--family", "nb999", "--arch", "x", str(tmp_path / "out.onnx")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nb999'" in err and all(repr(n) in err for n in ALL)


def test_building_the_cli_parser_loads_no_family_module():
    code = ("import sys; from gennape.cli import build_parser; build_parser(); "
            "sys.exit(any(m.startswith('gennape.cg.families') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ------------------------------------------------------------ NB-201 datasets
def test_nb201_other_datasets(data_dir):
    nb201 = get_family("nb201")
    assert nb201.label_options == {"dataset": ("cifar10", "cifar100", "imagenet16_120")}
    cifar10 = nb201.load_labelled(data_dir)
    for dataset, best in (("cifar100", 0.7351), ("imagenet16_120", 0.4731)):
        recs = nb201.load_labelled(data_dir, dataset=dataset)
        assert len(recs) == 15625 and max(r.accuracy for r in recs) == pytest.approx(best, abs=1e-4)
        assert {r.key for r in recs} == {r.key for r in cifar10}
        assert all(r.extra == {} for r in recs)  # NASLib's CIFAR-10 params / proxies stay with CIFAR-10
    pools = "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|"
    rec = next(r for r in nb201.load_labelled(data_dir, dataset="cifar100") if r.key == pools)
    assert rec.accuracy == pytest.approx(0.102)
    with pytest.raises(ValueError, match="unknown NB-201 dataset 'cifar20'; valid datasets: cifar10, cifar100"):
        nb201.load_labelled(data_dir, dataset="cifar20")
