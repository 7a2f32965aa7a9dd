"""Benchmark-family networks as ``torch.nn`` modules (these modules import torch at the top)."""
