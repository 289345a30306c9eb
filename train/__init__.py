"""Training and evaluation: reproduce the paper's BP4D model, baselines and experiments.

Modules: ``config`` (training configs), ``bp4d`` (FERA 2015 reader, landmark cache), ``synthetic``
(synthetic AU set from real faces), ``data`` (splits of a config), ``datasets`` (augmented tensors),
``augment``, ``losses``, ``metrics``, ``trainer``, ``baselines`` (ResNet-18, single-heatmap),
``experiments`` (landmark-noise sweep), ``report`` (Table 1), ``cli`` (``au-train``).
"""
