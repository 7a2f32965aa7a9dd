"""GNN encoders that embed a computation graph (PyTorch Geometric)."""
