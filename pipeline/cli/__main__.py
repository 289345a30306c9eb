"""``python -m pipeline.cli``: au-annotate (as before the commands moved into this package)."""

from pipeline.cli.annotate import main

main()
