"""Architecture search: spaces, strategies, ask/tell, limits, seeding, the CLI and its pictures."""

import csv
import io
import json
from dataclasses import dataclass

import numpy as np
import pytest

from gennape.cg.families import family_names
from gennape.transfer.search import Evaluator, PoolSpace, Search, Space, get_space, run_search
from gennape.transfer.search.space import SPACE_NAMES
from gennape.transfer.search.landscape import autocorrelation, mean_abs_difference, random_walk
from gennape.transfer.search.output import pareto_front
from gennape.transfer.search.strategies import STRATEGIES


# ----------------------------------------------------------- a toy space
@dataclass(frozen=True)
class ToySpec:
    genes: tuple

    def to_arch(self):
        return "-".join(map(str, self.genes))


class ToySpace(Space):
    """``n`` decisions of ``k`` values; genotypes with a gene equal to ``k - 1``
    at position 0 and 1 at once are invalid (a space with holes)."""

    def __init__(self, n, k):
        self.decisions = (k,) * n

    @property
    def name(self):
        return "toy"

    def decode(self, g):
        return None if len(g) > 1 and g[0] == g[1] == self.decisions[0] - 1 else ToySpec(tuple(g))

    def encode(self, spec):
        return spec.genes


TARGET = (2, 0, 1, 2, 1, 0, 2, 1)


def toy_score(spec):
    """Separable, single optimum at TARGET (0), every other genotype below."""
    return -float(sum((a - b) ** 2 for a, b in zip(spec.genes, TARGET)))


def drive(search, queries, batch=8):
    done = 0
    while done < queries:
        specs = search.ask(batch)
        search.tell(specs, [toy_score(s) for s in specs])
        done += len(specs)
    return search


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_each_strategy_finds_the_optimum_of_a_synthetic_score(strategy):
    # random search gets the 243-genotype space, the others 3^8 = 6,561 genotypes.
    n = 5 if strategy == "random" else 8
    search = drive(Search(strategy, ToySpace(n, 3), seed=0), 1500)
    best, score = search.best()[0]
    assert best.genes == TARGET[:n] and score == 0.0


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_seeded_runs_are_identical_and_seeds_differ(strategy):
    def history(seed):
        return [(s.genes, v) for s, v in drive(Search(strategy, ToySpace(8, 3), seed=seed), 200).history]

    assert history(3) == history(3)
    assert history(3) != history(4)


def test_evolution_asked_more_than_its_population_at_once():
    search = drive(Search("evolution", ToySpace(8, 3), seed=0, population=10, sample=3), 200, batch=25)
    assert len(search.history) == 200 and len(search.strategy.population) == 10


def test_tell_checks_the_asked_specs():
    search = Search("evolution", ToySpace(4, 3), seed=0)
    specs = search.ask(3)
    with pytest.raises(ValueError, match="one score each"):
        search.tell(specs, [1.0])
    with pytest.raises(ValueError, match="another order"):
        search.tell(specs[::-1], [1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="tell"):
        search.ask(1)
    search.tell(specs, [1.0, None, 2.0])  # None: infeasible, never the best
    assert search.best()[0][1] == 2.0


def test_cli_lists_the_strategies_and_spaces_of_the_package():
    from gennape.commands import landscape, search

    from gennape.transfer.search.select import SELECTIONS

    assert set(search.STRATEGY_NAMES) == set(STRATEGIES)
    assert search.SELECTIONS == SELECTIONS
    assert set(search.FAMILIES) == set(landscape.FAMILIES) == set(SPACE_NAMES)
    assert set(SPACE_NAMES) <= set(family_names())


def test_unknown_strategy_and_family_list_the_valid_names():
    with pytest.raises(ValueError, match="valid strategies: evolution"):
        Search("annealing", ToySpace(3, 3))
    with pytest.raises(ValueError, match="no search space .* valid families: nb101"):
        get_space("nb999")


# -------------------------------------------------------- family spaces
@pytest.mark.parametrize("family", SPACE_NAMES)
def test_family_space_decodes_encodes_and_moves_by_one_change(family):
    space = get_space(family)
    rng = np.random.default_rng(0)
    g = space.sample(rng)
    spec = space.decode(g)
    assert spec is not None
    assert space.key(space.decode(space.encode(spec))) == space.key(spec)
    neighbours = space.neighbours(g)
    keys = {space.key(space.decode(n)) for n in neighbours}
    assert neighbours and len(keys) == len(neighbours) and space.key(spec) not in keys
    assert all(space.distance(g, n) == 1 for n in neighbours)
    ref = space.reference()
    assert ref is not None and space.key(space.decode(space.encode(ref))) == space.key(ref)


def test_nb201_space_is_the_whole_benchmark():
    space = get_space("nb201")
    assert int(np.prod(space.decisions)) == 15_625
    assert len(space.neighbours(space.encode(space.reference()))) == 24  # 6 edges x 4 other ops


@pytest.mark.parametrize("family", ["nb201", "tnb101_macro"])
def test_pool_space_stays_in_the_pool(family):
    base = get_space(family)
    rng = np.random.default_rng(0)
    pool = [base.decode(base.sample(rng)) for _ in range(30)]
    space = PoolSpace(base, pool)
    keys = {base.key(s) for s in pool}
    g = space.sample(rng)
    for _ in range(50):
        g = space.mutate(g, rng)
        assert base.key(space.decode(g)) in keys
    assert all(base.key(space.decode(n)) in keys for n in space.neighbours(g))


# ---------------------------------------------- limits on the exact CG
def conv_count(cgs, specs):
    """A score that prefers big networks, so the limit binds."""
    return [sum(op.startswith("nor_conv") for op in s.ops) for s in specs]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_limits_are_never_violated(strategy):
    space = get_space("nb201")
    limit = 50e6
    ev = Evaluator(space, scorer=conv_count, max_macs=limit, max_params=0.5e6)
    result = run_search(space, ev, strategy, 150, seed=1, batch_size=16)
    assert ev.stats.infeasible > 0 and result.ranked
    for c in result.ranked:
        cg = space.family.to_cg(c.spec)
        assert (c.macs, c.params) == (cg.macs, cg.params)
        assert c.macs <= limit and c.params <= 0.5e6
    infeasible = [c for c in ev.cache.values() if not c.feasible]
    assert all(c.score is None and (c.macs > limit or c.params > 0.5e6) for c in infeasible)


def test_evaluator_answers_repeats_from_its_cache():
    space = get_space("nb201")
    calls = []

    def scorer(cgs, specs):
        calls.append(len(specs))
        return [0.0] * len(specs)

    ev = Evaluator(space, scorer=scorer)
    spec = space.reference()
    ev([spec, spec])
    ev([spec])
    assert calls == [1] and ev.stats.queries == 3 and ev.stats.cache_hits == 2


def test_pareto_front():
    points = [(1, 0.5), (2, 0.7), (2, 0.6), (3, 0.65), (4, 0.9), (0.5, 0.1)]
    assert pareto_front(points) == [5, 0, 1, 4]


# ------------------------------------------------------------ landscape
def test_autocorrelation_and_distance_groups():
    x = np.sin(np.arange(400) / 5.0)
    r = autocorrelation(x, 3)
    assert r[0] > r[1] > r[2] > 0.8
    noise = autocorrelation(np.random.default_rng(0).normal(size=2000), 2)
    assert np.all(np.abs(noise) < 0.1)
    space = ToySpace(4, 3)
    walk = [(0, 0, 0, 0), (1, 0, 0, 0), (1, 1, 0, 0)]
    assert mean_abs_difference(walk, [0.0, 1.0, 3.0], space, 2) == {1: 1.5, 2: 3.0}


def test_random_walk_moves_one_change_at_a_time():
    space = get_space("nb201")
    walk = random_walk(space, 30, seed=0)
    assert len(walk) == 31 and all(space.distance(a, b) == 1 for a, b in zip(walk, walk[1:]))


# ------------------------------------------------------------------ CLI
def test_search_cli_without_data(tmp_path, monkeypatch, capsys):
    from gennape.cli import main

    monkeypatch.setenv("GENNAPE_DATA", str(tmp_path / "nowhere"))
    out = tmp_path / "found"
    code = main(["search", "--family", "nb201", "--queries", "40", "--batch-size", "20", "--max-flops", "60M",
                 "--top", "2", "--seed", "0", "--out", str(out)])
    assert code == 0
    rows = list(csv.DictReader(io.StringIO((out / "candidates.csv").read_text())))
    assert rows and [r["rank"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    assert all(int(r["macs"]) <= 60e6 for r in rows)
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= float(r["predicted_accuracy"]) <= 1 and float(r["uncertainty"]) >= 0 for r in rows)
    assert sorted(p.name for p in out.glob("*.onnx")) == ["rank01.onnx", "rank02.onnx"]
    summary = json.loads((out / "search.json").read_text())
    assert summary["profile"]["predicted"] + summary["profile"]["cache_hits"] + summary["profile"]["infeasible"] == 40
    assert summary["reference"]["name"] == "ResNet cell"
    assert (out / "pareto.png").exists() == summary["pareto_png"]
    if summary["pareto_png"]:
        assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert "best of" in capsys.readouterr().out


def test_search_cli_bad_start_is_one_line_error(tmp_path, capsys):
    from gennape.cli import main

    assert main(["search", "--family", "nb201", "--start", "|bogus~0|", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gennape search: error: --start") and err.count("\n") == 1


def test_landscape_and_map_pictures(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from gennape.cli import main

    monkeypatch.setenv("GENNAPE_DATA", str(tmp_path / "nowhere"))
    assert main(["landscape", "--family", "nb201", "--steps", "20", "--max-lag", "3", "--out",
                 str(tmp_path / "land.png")]) == 0
    assert main(["map", "nb201", "nb301", "--samples", "4", "--out", str(tmp_path / "map.png")]) == 0
    for name in ("land.png", "map.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_pictures_without_matplotlib_are_a_clear_error(tmp_path, monkeypatch, capsys):
    import sys

    from gennape.cli import main

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["landscape", "--family", "nb201", "--out", str(tmp_path / "l.png")]) == 2
    assert "matplotlib" in capsys.readouterr().err


def test_search_cli_without_matplotlib_skips_only_the_picture(tmp_path, monkeypatch, capsys):
    import sys

    from gennape.cli import main

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "found"
    assert main(["search", "--family", "nb201", "--queries", "8", "--top", "1", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "pareto.png skipped" in err and "matplotlib" in err and err.count("\n") == 1
    assert (out / "candidates.csv").exists() and (out / "rank01.onnx").exists() and not (out / "pareto.png").exists()


# ------------------------------------------------------- dead NB-201 cells
def none_count(cgs, specs):
    """A score that prefers cells of 'none' ops: the all-'none' dead cell would win if allowed."""
    return [sum(op == "none" for op in s.ops) for s in specs]


def test_nb201_space_leaves_out_the_dead_cells():
    from itertools import product

    space = get_space("nb201")
    family = space.family
    live = [g for g in product(range(5), repeat=6) if space.decode(g) is not None]
    dead = 15_625 - len(live)
    assert 0 < dead and all(family.output_depends_on_input(space.decode(g)) for g in live)
    rng = np.random.default_rng(0)
    g = space.sample(rng)
    for _ in range(300):
        g = space.mutate(g, rng)
        assert family.output_depends_on_input(space.decode(g))


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_dead_cells_are_never_proposed_nor_candidates(strategy):
    space = get_space("nb201")
    ev = Evaluator(space, scorer=none_count)
    result = run_search(space, ev, strategy, 300, seed=0, batch_size=16)
    proposed = [spec for spec, _ in result.search.history]
    assert all(space.family.output_depends_on_input(s) for s in proposed)
    assert all(space.family.output_depends_on_input(c.spec) for c in ev.cache.values())
    if strategy == "evolution":  # the best live cell: one skip/op edge 0 -> 3, five 'none'
        assert result.ranked[0].score == 5


def test_evaluator_and_pool_refuse_dead_cells():
    from gennape.cg.families.nb201 import NB201Spec

    space = get_space("nb201")
    dead = NB201Spec(("none",) * 6)
    ev = Evaluator(space, scorer=none_count)
    assert not ev([dead])[0].feasible and ev.ranked() == []
    pool = PoolSpace(space, [dead, space.reference()])
    assert len(pool.specs) == 1
    with pytest.raises(ValueError, match="dead cell"):
        Search("evolution", space, start=[dead])


def test_search_cli_refuses_a_dead_start_in_one_line(tmp_path, capsys):
    from gennape.cli import main

    dead = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert main(["search", "--family", "nb201", "--start", dead, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "dead cell" in err and err.count("\n") == 1


# ------------------------------------------------------------ TNB-101
TNB_SPACES = ("tnb101_micro", "tnb101_macro")


@pytest.mark.parametrize("family", TNB_SPACES)
def test_tnb101_sampling_mutation_and_notation_round_trip(family):
    space = get_space(family)
    fam = space.family
    rng = np.random.default_rng(0)
    g = space.sample(rng)
    for _ in range(300):
        for h in (space.sample(rng), g):
            spec = space.decode(h)
            assert spec is not None and fam.output_depends_on_input(spec)
            assert fam.parse(spec.to_arch()) == spec  # ARCH string -> spec -> ARCH string
            assert space.decode(space.encode(spec)) == spec and space.encode(spec) == h
        g = space.mutate(g, rng)
    assert all(space.decode(n) is not None for n in space.neighbours(g))


def test_tnb101_spaces_hold_exactly_the_family_networks():
    from itertools import product

    micro = get_space("tnb101_micro")
    live = {micro.decode(g) for g in product(range(4), repeat=6)} - {None}
    assert len(live) == 4096 - 169  # the constant-output cells are left out
    macro = get_space("tnb101_macro")
    skeletons = {macro.decode(g) for g in product(range(5), repeat=6)} - {None}
    assert skeletons == set(macro.family.all_specs())


def test_tnb101_macro_changes_are_single_edits_of_the_codes():
    space = get_space("tnb101_macro")
    g = space.encode(space.family.parse("64-14141-basic"))
    codes = {space.decode(n).codes for n in space.neighbours(g)}
    assert (1, 4, 1, 4) in codes            # a module removed
    assert (1, 4, 1, 4, 1, 1) in codes      # a module inserted
    assert (1, 4, 3, 4, 1) in codes         # a code replaced
    assert all(space.distance(g, space.encode(space.family.parse(f"64-{''.join(map(str, c))}-basic"))) == 1
               for c in codes)
    assert space.distance(space.encode(space.family.parse("64-1444-basic")),
                          space.encode(space.family.parse("64-144413-basic"))) == 2


TNB_TARGETS = {"tnb101_micro": (3, 1, 2, 3, 0, 1), "tnb101_macro": (1, 4, 2, 3, 1, 4)}


@pytest.mark.parametrize("family", TNB_SPACES)
@pytest.mark.parametrize("strategy", ["evolution", "local", "reinforce"])
def test_strategies_find_a_synthetic_optimum_of_the_tnb101_spaces(family, strategy):
    # Random search is left out: 3,256-3,927 networks, one optimum; the toy test covers it.
    space = get_space(family)
    target = space.encode(space.decode(TNB_TARGETS[family] + (0,) * (6 - len(TNB_TARGETS[family]))))
    search = Search(strategy, space, seed=0)
    done = 0
    while done < 1500:
        specs = search.ask(8)
        search.tell(specs, [-float(space.distance(space.encode(s), target)) for s in specs])
        done += len(specs)
    best, score = search.best()[0]
    assert space.encode(best) == target and score == 0.0


# ------------------------------------------------------- top-K selection
def test_top_k_selection_rules():
    from gennape.transfer.search.search import Candidate
    from gennape.transfer.search.select import select_top

    space = ToySpace(4, 3)
    genes = [(0, 0, 0, 0), (0, 0, 0, 1), (2, 2, 2, 2), (0, 0, 1, 1), (2, 2, 2, 1)]
    spreads = [0.0, 0.0, 0.0, 0.35, 0.0]
    ranked = [Candidate(str(i), ToySpec(g), 0, 0, True, score=1.0 - i / 10, accuracy=0.9 - i / 10, uncertainty=u)
              for i, (g, u) in enumerate(zip(genes, spreads))]
    assert [c.key for c in select_top(ranked, 2)] == ["0", "1"]
    # diverse: (0,0,0,1) and (2,2,2,1) are one change from an earlier choice
    assert [c.key for c in select_top(ranked, 5, "diverse", space)] == ["0", "2", "3"]
    assert [c.key for c in select_top(ranked, 2, "optimistic")] == ["3", "0"]  # 0.6 + 0.35 > 0.9 + 0
    with pytest.raises(ValueError, match="valid selections: score, diverse, optimistic"):
        select_top(ranked, 2, "best")


def test_search_cli_exports_a_diverse_top_k(tmp_path):
    from gennape.cli import main

    out = tmp_path / "found"
    assert main(["search", "--family", "tnb101_micro", "--queries", "24", "--top", "3", "--select", "diverse",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "search.json").read_text())
    assert summary["select"] == "diverse" and len(list(out.glob("rank*.onnx"))) == 3
    space = get_space("tnb101_micro")
    chosen = [space.encode(space.family.parse(e["arch"])) for e in summary["exported"]]
    assert len(chosen) == 3 and all(space.distance(a, b) >= 2 for i, a in enumerate(chosen) for b in chosen[i + 1:])
