"""Step 6, output: the table's columns (:mod:`~pipeline.output.schema`), where files go and how they are
written whole (:mod:`~pipeline.output.location`), part files, assembly and
``--resume`` (:mod:`~pipeline.output.store`), the run lock (:mod:`~pipeline.output.lock`), CSV and
OpenFace files (:mod:`~pipeline.output.csv_output`, :mod:`~pipeline.output.openface`), and reading results
back (:mod:`~pipeline.output.results`, :mod:`~pipeline.output.summary`,
:mod:`~pipeline.output.faces_found`). Reading imports neither torch nor OpenCV."""
