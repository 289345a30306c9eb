"""The commands, thin click layers over the library: ``au-annotate`` (:mod:`~pipeline.cli.annotate`),
``au-render`` and ``au-plot`` (:mod:`~pipeline.cli.render`), ``au-export`` (:mod:`~pipeline.cli.export`),
``au-report`` (:mod:`~pipeline.cli.report`)."""
