"""Contrastive pretraining (on NAS-Bench-101, or on every labelled family at once), fuzzy clustering, the estimator, its student and its k-shot correction."""
