"""Run by tests/test_distributed.py under torchrun: fit the tiny estimator of
tests/_hostile.py without random augmentation (feature masks and edge drops
are drawn per rank; all else is the computation of one process), keeping the
partial state in argv[1] and resuming from it with ``--resume``; rank 0 saves
the checkpoint there. No ``eval_set``: on 20 tiny networks the validation
Spearman that picks the best head epoch is about 0.04, so embeddings that
differ by 1e-6 between the two runs can pick another epoch, and the heads then
differ by one optimiser step whatever the data parallelism does."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _hostile import TINY_PARAMS, tiny_data  # noqa: E402
from gennape.pretrain.distributed import is_main_process, process_group  # noqa: E402
from gennape.pretrain.estimator import GennapeEstimator  # noqa: E402

#: Batches of 15 split 8 + 7 over two ranks; the supervised probe is on.
PARAMS = {**TINY_PARAMS, "feature_mask_p": 0.0, "edge_drop_p": 0.0, "batch_size": 15, "supervised_weight": 0.5}


def fit(state_dir, resume=False, on_epoch=None) -> GennapeEstimator:
    cgs, y = tiny_data()
    return GennapeEstimator(**PARAMS).fit(cgs, y, state_dir=state_dir,
                                          resume=resume, on_epoch=on_epoch)


if __name__ == "__main__":
    torch.set_num_threads(1)
    with process_group() as dp:
        est = fit(sys.argv[1], resume="--resume" in sys.argv)
        if is_main_process():
            est.metadata_ = {"world_size": dp.world_size, "distributed_backend": dp.backend}
            est.save(sys.argv[1])
