"""Step 1, inputs: what counts as a video (:mod:`~pipeline.inputs.sources`), probing and decoding it
(:mod:`~pipeline.inputs.decode`, with :mod:`~pipeline.inputs.avi_index` for AVI files, :mod:`~pipeline.inputs.images`
for images and frame folders, :mod:`~pipeline.inputs.regions` for converting pictures to RGB only where they are
read, :mod:`~pipeline.inputs.swscale` for converting them straight into our arrays), a video's fingerprint for
``--resume`` (:mod:`~pipeline.inputs.fingerprint`) and random access to frames for overlays
(:mod:`~pipeline.inputs.frame_reader`)."""
