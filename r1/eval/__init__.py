"""Held-out evaluation: generation, strict scoring, pass@k / cons@k."""
