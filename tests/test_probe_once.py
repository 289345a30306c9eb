"""A run probes each video once: the driver's probe travels with the work items (``WorkItem.info``),
so no item probes its video again, also with ``--faces largest`` (an item decoded twice) and with a
video cut into several items. Probes are counted by wrapping the readers' probe methods."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from pipeline.config import load_pipeline_config, with_overrides
from pipeline.execution.run import annotate
from pipeline.inputs import decode
from pipeline.output.results import load_results
from pipeline.stages import AnnotateOptions
from pipeline_helpers import small_checkpoint

VIDEOS = Path(__file__).parent / "data" / "same_outputs"


@pytest.fixture
def probes(monkeypatch) -> collections.Counter:
    """Probes per video file (every reader kind), for the duration of the test."""
    counts: collections.Counter = collections.Counter()
    for reader in (decode.VideoFileReader, decode.ImageReader):
        original = reader.probe

        def counting(self, _original=original):
            counts[Path(self.path).name] += 1
            return _original(self)

        monkeypatch.setattr(reader, "probe", counting)
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("faces", ["all", "largest"])
def test_a_run_probes_each_video_once(probes, tmp_path, faces) -> None:
    weights = small_checkpoint(tmp_path / "small.pt")
    pipeline = with_overrides(load_pipeline_config(), decode={"chunk_frames": 10})  # two.mp4: 3 items
    out = tmp_path / "results.parquet"
    summary = annotate(
        [VIDEOS],
        out,
        AnnotateOptions(device="cpu", faces=faces, pipeline=pipeline),
        weights=weights,
        progress=False,
        workers=1,
        producers=0,
    )
    assert summary.ok, summary.failures
    assert len(load_results(out).attrs["au_heatmaps"]["items"]) == 6  # 3 + 2 + 1 items
    assert dict(probes) == {"two.mp4": 1, "astronaut.mp4": 1, "noise.mkv": 1}


def test_an_item_without_the_drivers_probe_probes_itself(probes, tmp_path) -> None:
    """An item built by hand (no ``info``) still runs: it probes its video itself, once."""
    from model.config import load_model_config
    from pipeline.items import WorkItem
    from pipeline.stages import ItemPreparer

    preparer = ItemPreparer(AnnotateOptions(device="cpu"), load_model_config().registration)
    item = WorkItem(str(VIDEOS / "astronaut.mp4"), "astronaut.mp4", 0, 14, 14)
    batches = list(preparer.face_batches(item))
    assert sum(len(b.batch) for b in batches) == 14 and probes["astronaut.mp4"] == 1
