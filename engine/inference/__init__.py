"""Inference on base models and runs: the one generator, side-by-side chat, reward scoring, evaluation
and its task probes."""
