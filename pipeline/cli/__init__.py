"""The commands, thin click layers over the library: ``au-annotate`` (:mod:`~pipeline.cli.annotate`),
``au-render`` and ``au-plot`` (:mod:`~pipeline.cli.render`), ``au-export`` (:mod:`~pipeline.cli.export`),
``au-report`` (:mod:`~pipeline.cli.report`)."""


def __getattr__(name: str):
    """``pipeline.cli:main`` is au-annotate, as before the commands moved into this package (an install
    made then keeps working until it is reinstalled)."""
    if name == "main":
        from pipeline.cli.annotate import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
