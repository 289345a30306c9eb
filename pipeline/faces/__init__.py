"""Step 3, faces: 68-point landmark tracking behind one interface chosen by name
(:mod:`~pipeline.faces.tracker`; backends :mod:`~pipeline.faces.dlib_tracker` and
:mod:`~pipeline.faces.fan_tracker`), who is who (:mod:`~pipeline.faces.identity`), where the video cuts
(:mod:`~pipeline.faces.shots`) and the head's pose (:mod:`~pipeline.faces.pose`)."""
