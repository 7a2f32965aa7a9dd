"""The benchmark families' training networks as ``torch.nn.Module`` (these modules import torch).

Import them through :meth:`gennape.cg.families.base.Family.to_module`, which keeps
torch out of ``import gennape.cg``.
"""
