"""Contrastive pretraining on NAS-Bench-101, fuzzy clustering and the estimator."""
