"""Training and evaluation: reproduce the paper's BP4D model, baselines and experiments."""
