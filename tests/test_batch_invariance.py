"""A network's prediction does not depend on the networks predicted with it, nor on their order."""

import numpy as np
import pytest
import torch

from conftest import LIGHT_MODELS
from gennape.pretrain.batch_invariance import fixed_block_linear


def test_fixed_block_linear_rows_do_not_depend_on_the_other_rows():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 45, generator=g)
    for out in (64, 1):
        w, b = torch.randn(out, 45, generator=g), torch.randn(out, generator=g)
        full = fixed_block_linear(x, w, b)
        torch.testing.assert_close(full, torch.nn.functional.linear(x, w, b))
        for start, n in ((0, 1), (7, 2), (100, 65), (3, 297)):
            perm = torch.randperm(n, generator=g)
            assert torch.equal(fixed_block_linear(x[start:start + n][perm], w, b), full[start:start + n][perm])


@pytest.fixture(scope="module")
def light_cgs(light_dir):
    from gennape.cg import from_onnx

    return [from_onnx(light_dir / f"light_{name}.onnx") for name in LIGHT_MODELS]


def _rows(details: dict, order) -> dict:
    """The bytes of every output for the networks at positions ``order``
    (``member_scores`` is ``[members, n]``)."""
    return {k: np.ascontiguousarray(np.take(np.asarray(v), order, axis=-1 if k == "member_scores" else 0)).tobytes()
            for k, v in details.items()}


def test_light_models_alone_among_others_and_reversed_are_bit_identical(light_cgs):
    """The nine onnx model-zoo light models through the shipped nine-member
    ensemble: every output of predict_details, to the bit."""
    from gennape.transfer.model import default_checkpoint, load_estimator

    if not (default_checkpoint() / "config.json").is_file():
        pytest.skip("no shipped checkpoint")
    est = load_estimator()
    n = len(light_cgs)
    together = est.predict_details(light_cgs)
    assert _rows(est.predict_details(light_cgs[::-1]), np.arange(n)[::-1]) == _rows(together, np.arange(n))
    for i in (0, 4, n - 1):
        assert _rows(est.predict_details([light_cgs[i]]), [0]) == _rows(together, [i])  # alone
        trio = [light_cgs[(i + 1) % n], light_cgs[i], light_cgs[(i + 2) % n]]
        assert _rows(est.predict_details(trio), [1]) == _rows(together, [i])  # among two others
