import io
import json

import pytest

from gennape.cli import main
from gennape.pretrain.data import hash_bucket, split_indices
from gennape.pretrain.progress import progress

NB101 = ("nb101", "nb101_30k_labelled.json.gz")
QUICK = ["--epochs", "2", "--head-epochs", "60", "--threads", "1"]


def _pretrain(data_dir, out, *extra):
    return main(["pretrain", "--data", str(data_dir.joinpath(*NB101)), "--out", str(out), *extra])


def test_tiny_pretraining_ranks_nb101_above_chance(data_dir, tmp_path, capsys):
    assert _pretrain(data_dir, tmp_path / "ck", "--limit", "400", *QUICK) == 0
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "epoch 2/2" in out and "NB-101 test: Spearman" in out
    metrics = json.loads((tmp_path / "ck" / "metrics.json").read_text())
    assert metrics["test"]["n"] >= 20
    assert metrics["test"]["spearman"] > 0.3
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert config["metadata"]["command"].startswith("gennape pretrain ") and "--limit 400" in config["metadata"]["command"]
    assert len(config["metadata"]["training_data"]["sha256"]) == 64

    from gennape.pretrain.estimator import GennapeEstimator

    assert GennapeEstimator.load(tmp_path / "ck").n_train_ == metrics["n_train"]


def test_members_make_a_seed_ensemble_checkpoint(data_dir, tmp_path, capsys):
    from gennape.pretrain.ensemble import GennapeEnsemble
    from gennape.transfer.model import load_estimator

    assert _pretrain(data_dir, tmp_path / "ens", "--limit", "200", "--epochs", "1", "--head-epochs", "10",
                     "--members", "2", "--seed", "5", "--no-feature-clamp") == 0
    out = capsys.readouterr().out
    assert "ensemble member 1/2 (seed 5)" in out and "ensemble member 2/2 (seed 6)" in out
    config = json.loads((tmp_path / "ens" / "config.json").read_text())
    assert config["estimator"] == "GennapeEnsemble" and "--members 2" in config["metadata"]["command"]
    assert "--no-feature-clamp" in config["metadata"]["command"] and "--no-capacity-term" not in config["metadata"]["command"]
    est = load_estimator(tmp_path / "ens")
    assert isinstance(est, GennapeEnsemble) and [m.seed for m in est.members_] == [5, 6]
    assert all(not m.feature_clamp and m.capacity_term for m in est.members_)
    assert _pretrain(data_dir, tmp_path / "bad", "--members", "0") == 2
    assert "--members 0" in capsys.readouterr().err


def _interrupted(data_dir, out, at_line: str, **params) -> None:
    """Start a 100-network pretraining into ``out`` and interrupt it when a log line starts with ``at_line``."""
    from gennape.pretrain.run import pretrain_nb101

    def interrupt(line):
        if line.startswith(at_line):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain_nb101(data_dir.joinpath(*NB101), out, limit=100, head_epochs=5, log=interrupt, **params)


def _same_model(a_dir, b_dir) -> bool:
    import torch

    a = torch.load(a_dir / "model.pt", weights_only=True)
    b = torch.load(b_dir / "model.pt", weights_only=True)
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_continues_where_the_run_stopped(data_dir, tmp_path):
    import torch

    from gennape.pretrain.estimator import PARTIAL_STATE

    small = ["--limit", "100", "--epochs", "2", "--head-epochs", "5", "--threads", "1"]
    assert _pretrain(data_dir, tmp_path / "straight", *small) == 0
    _interrupted(data_dir, tmp_path / "resumed", "epoch 1/2", epochs=2)
    assert not (tmp_path / "resumed" / "model.pt").exists()  # nothing loadable was left
    assert int(torch.load(tmp_path / "resumed" / PARTIAL_STATE, weights_only=True)["epoch"]) == 1
    assert _pretrain(data_dir, tmp_path / "resumed", *small, "--resume") == 0
    assert _same_model(tmp_path / "straight", tmp_path / "resumed")
    # Other parameters than the partial state's are refused, not silently mixed.
    _interrupted(data_dir, tmp_path / "other", "epoch 1/2", epochs=2)
    assert _pretrain(data_dir, tmp_path / "other", *small[:2], "--epochs", "3", "--resume") == 2


def test_resumed_ensemble_skips_finished_members_and_matches(data_dir, tmp_path):
    from gennape.pretrain.run import pretrain_nb101

    small = ["--limit", "100", "--epochs", "1", "--head-epochs", "5", "--threads", "1", "--members", "2"]
    assert _pretrain(data_dir, tmp_path / "straight", *small) == 0
    _interrupted(data_dir, tmp_path / "resumed", "ensemble member 2/2", epochs=1, members=2)
    lines = []
    assert pretrain_nb101(data_dir.joinpath(*NB101), tmp_path / "resumed", limit=100, epochs=1, head_epochs=5,
                          members=2, resume=True, log=lines.append)
    assert sum(line.startswith("epoch 1/1") for line in lines) == 1  # only the second member trained again
    assert _same_model(tmp_path / "straight", tmp_path / "resumed")


def test_bad_inputs_are_one_line_errors(data_dir, tmp_path, capsys):
    assert main(["pretrain", "--data", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "missing.json" in err and "not found" in err and "Traceback" not in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["pretrain", "--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.json" in capsys.readouterr().err
    assert _pretrain(data_dir, tmp_path / "o", "--limit", "40", "--conv", "bogus") == 2
    assert "valid choices" in capsys.readouterr().err
    assert _pretrain(data_dir, tmp_path / "o", "--limit", "40", "--op-encoding", "bogus") == 2
    assert "valid choices: class, op" in capsys.readouterr().err


def test_split_is_by_hash_and_stable():
    keys = [f"{i:032x}" for i in range(2000)]
    split = split_indices(keys)
    sizes = {k: len(v) for k, v in split.items()}
    assert sum(sizes.values()) == 2000
    assert 0.75 < sizes["train"] / 2000 < 0.85 and 0.07 < sizes["test"] / 2000 < 0.13
    assert all(hash_bucket(keys[i]) == 9 for i in split["test"])
    assert split_indices(keys[::-1])["test"].size == sizes["test"]


def test_progress_bar_draws_only_on_a_tty_or_when_forced():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    class Closed(io.StringIO):
        def isatty(self):
            raise ValueError("I/O operation on closed file")

    tty, plain, forced, closed = Tty(), io.StringIO(), io.StringIO(), Closed()
    for stream, enabled in ((tty, None), (plain, None), (forced, True), (closed, None)):
        with progress(total=3, desc="work", stream=stream, enabled=enabled) as bar:
            for _ in range(3):
                bar.update()
        assert list(progress(range(4), desc="loop", stream=stream, enabled=enabled)) == [0, 1, 2, 3]
    for drawn in (tty, forced):
        assert "work" in drawn.getvalue() and "3/3" in drawn.getvalue() and "4/4" in drawn.getvalue()
    assert plain.getvalue() == "" and closed.getvalue() == ""
    off = Tty()
    with progress(total=3, desc="work", stream=off, enabled=False) as bar:
        bar.update(3)
    assert off.getvalue() == ""


def test_graph_level_views_keep_the_cell_and_change_the_skeleton():
    from gennape.cg.families.nb101 import FAMILY, NB101Spec
    from gennape.encoder.features import FEATURE_NAMES, featurize
    from gennape.pretrain.views import MacroShape, nb101_view_cg

    spec = NB101Spec.from_lists(
        [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
        ["input", "conv3x3-bn-relu", "maxpool3x3", "output"],
    )
    assert nb101_view_cg(spec, MacroShape()) == FAMILY.to_cg(spec)  # the anchor view is the benchmark network
    small = nb101_view_cg(spec, MacroShape(stem_channels=16, cells_per_stack=5))
    assert small.input_resolution == 32 and small.params < FAMILY.to_cg(spec).params
    assert small.op_counts()["max_pool"] == FAMILY.to_cg(spec).op_counts()["max_pool"] + 3 * (5 - 3)
    big = nb101_view_cg(spec, MacroShape(input_size=64, cells_per_stack=1))
    assert big.input_resolution == 64
    assert featurize(big.to_pyg()).shape[1] == len(FEATURE_NAMES)


def test_cli_defaults_are_the_estimators_and_the_parser_needs_no_torch():
    import subprocess
    import sys

    from gennape.cli import build_parser
    from gennape.pretrain.estimator import GennapeEstimator

    args = build_parser().parse_args(["pretrain", "--out", "x"])
    defaults = GennapeEstimator().get_params()
    shared = set(vars(args)) & set(defaults)
    assert {"epochs", "seed", "device", "readout", "supervised_weight", "capacity_term", "feature_clamp"} <= shared
    assert {k: getattr(args, k) for k in shared} == {k: defaults[k] for k in shared}
    code = "import sys; from gennape.cli import build_parser; build_parser(); sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_families_pretrain_an_ensemble_on_every_label_set(data_dir, tmp_path, capsys):
    from gennape.pretrain.ensemble import GennapeEnsemble
    from gennape.transfer.model import load_estimator

    out_dir = tmp_path / "mf"
    assert main(["pretrain", "--families", "nb201,tnb101_micro", "--per-family", "40", "--members", "2",
                 "--epochs", "1", "--head-epochs", "5", "--size-measure", "weights_macs", "--threads", "1",
                 "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "dataset=cifar100" in out and "task=class_scene" in out  # every label set labels the networks
    est = load_estimator(out_dir)
    assert isinstance(est, GennapeEnsemble) and len(est.members_) == 2
    assert all(m.size_measure == "weights_macs" for m in est.members_)
    assert est.metadata_["label"].startswith("within-family quantile")
    assert "--families nb201,tnb101_micro" in est.metadata_["command"]
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert set(metrics["in_domain"]) == {"nb201", "tnb101_micro"}
    assert all(m["n"] == 500 for m in metrics["in_domain"].values())


def test_families_names_are_checked(tmp_path, capsys):
    assert main(["pretrain", "--families", "nb201,nb999", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown family nb999" in err and "valid: all, or some of nb101" in err
