"""Per-cluster predictor heads, soft-aggregated by fuzzy membership."""
