"""Training: the cross-encoder used for mining (and, next, bi-encoders on triplets)."""
