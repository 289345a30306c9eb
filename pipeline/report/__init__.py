"""``au-report``: a static report folder of a whole run (:mod:`~pipeline.report.page`, with face thumbnails
from :mod:`~pipeline.report.thumbnails` and the templates in ``static/``); the numbers come from
:mod:`pipeline.output.summary`."""
