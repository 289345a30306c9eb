"""``au-annotate``: the command line over :func:`pipeline.execution.run.annotate` (the whole run).

Only click (and the names of :mod:`model.precision` and :mod:`model.runtime`) is imported at module
level: ``--help`` and ``--version`` answer at once; torch, the decoders and the rest load when a run
starts (tests/test_cli_startup.py).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from model.precision import PRECISIONS
from model.runtime import RUNTIMES

EXAMPLES = """
\b
Examples:
  au-annotate videos/ --out results.parquet
  au-annotate a.mp4 b.mov --out ab.parquet --save-landmarks
  au-annotate videos/ --out results.csv                           # CSV (+ results.metadata.json)
  au-annotate videos/ --out results.parquet --fps 5 --resume
  au-annotate videos/ --out results.parquet --render overlays/      # + an overlay MP4 per video
  au-annotate videos/ --out results.parquet --landmarks fan --device cuda --batch-size 64
  au-annotate videos/ --out results.parquet --workers 4            # local Ray, 4 workers
  au-annotate videos/ --out results.parquet --producers 14 --precision bf16   # one GPU, 14 tracking processes
  au-annotate videos/ --out results.parquet --address auto         # join a running Ray cluster

\b
Then, in Python:
  from pipeline.output.results import load_results
  df = load_results("results.parquet")
"""


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXAMPLES,
)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file, .parquet or .csv (one row per face per annotated frame, one for a frame without "
    "a face). Written atomically at the end; finished videos are kept in OUT.parts/ until then.",
)
@click.option(
    "--weights",
    metavar="PATH|URL",
    help="Model weights (authors' released format or an au-train checkpoint). Default: "
    "$AU_HEATMAPS_WEIGHTS, else the authors' BP4D model, downloaded once into the cache.",
)
@click.option(
    "--landmarks",
    type=click.Choice(["dlib", "fan"]),
    default="dlib",
    show_default=True,
    help="Landmark tracker: dlib (offline, CPU; as the authors' code) or face-alignment's FAN (GPU when available).",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Where the model runs: auto (CUDA if available), cpu, cuda, cuda:1, ...",
)
@click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    default=None,
    help="What runs the model: auto (ONNX Runtime on the CPU, torch on CUDA), torch, or onnxruntime "
    "(CPU only) [default: auto; configs/pipeline.yaml].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Faces per model batch [default: on the CPU the fastest for this machine, measured once; "
    "64 on CUDA; configs/pipeline.yaml].",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="fp32",
    show_default=True,
    help="Model arithmetic on CUDA (bf16/fp16 are faster; the CPU always uses fp32).",
)
@click.option(
    "--every",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Annotate every N-th decoded frame only (frames 0, N, 2N, ...).",
)
@click.option(
    "--fps",
    "sample_fps",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="F",
    help="Annotate F frames per second of video time (the first frame of each 1/F s; right for variable frame rates).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Keep what an interrupted (or finished) run with the same weights and options already did; do the rest.",
)
@click.option("--save-landmarks", is_flag=True, help="Add the 68 landmarks (x_0..x_67, y_0..y_67) to the output.")
@click.option(
    "--faces",
    "faces",
    default="all",
    show_default=True,
    metavar="all|largest|N",
    help="Which faces get rows: all tracked faces; largest: the one most present person of each "
    "work item; N: the N most present.",
)
@click.option(
    "--workers",
    default="auto",
    show_default=True,
    metavar="N|auto",
    help="Parallel workers. auto: one per GPU, or one per two CPU cores without a GPU (per the "
    "cluster with --address). One worker runs in this process; more start a local Ray.",
)
@click.option(
    "--producers",
    default="auto",
    show_default=True,
    metavar="N|auto",
    help="CPU processes per worker that decode, track and register, feeding its model through shared "
    "memory. auto: with GPUs, all cores but two shared between the GPU workers; without, 0 "
    "(each worker tracks in its own thread). 0 turns the pool off.",
)
@click.option(
    "--compile",
    "compile_model",
    is_flag=True,
    help="torch.compile the network (CUDA only; a one-off compile of ~30 s, then faster batches).",
)
@click.option(
    "--address",
    default=None,
    metavar="ADDR",
    help="Ray cluster to join ('auto' or host:port; also $RAY_ADDRESS). Implies Ray.",
)
@click.option(
    "--gpus-per-worker",
    type=click.FloatRange(min=0),
    default=None,
    help="GPUs per Ray worker (e.g. 0.5 puts two workers on a GPU) [default: 1 when GPUs exist].",
)
@click.option(
    "--cpus-per-worker",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="CPUs Ray reserves for each worker, also its torch threads [default: the CPUs shared evenly].",
)
@click.option(
    "--chunk-frames",
    type=click.IntRange(min=1),
    default=None,
    help="Cut long videos into work items of this many frames [default: 9000].",
)
@click.option(
    "--image-fps",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="F",
    help="Frame rate of image sequences (folders of numbered frames) and still images: "
    "timestamps are index / F [default: 25; configs/pipeline.yaml].",
)
@click.option(
    "--camera-fov",
    type=click.FloatRange(min=1, max=179),
    default=None,
    metavar="DEG",
    help="Horizontal field of view of the camera, degrees, for head pose (pose_* columns) "
    "[default: 65.24, OpenFace's assumption; configs/pipeline.yaml].",
)
@click.option(
    "--focal-length",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="PX",
    help="The camera's focal length in pixels (of the decoded frames), for head pose; instead of --camera-fov.",
)
@click.option(
    "--config",
    "config_path",
    default="pipeline.yaml",
    show_default=True,
    help="Pipeline settings file (YAML), shipped name or path.",
)
@click.option(
    "--render",
    "render_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Also write an overlay MP4 per video into DIR (heatmaps over the face, intensities); "
    "not with --every/--fps. With Ray workers, DIR must be visible to them.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--verbose", "-v", is_flag=True, help="Log details (and tracebacks of failed videos).")
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _, value: _version(ctx, value),
    help="Show the version and exit.",
)
def main(
    inputs: tuple[Path, ...],
    out: Path,
    weights: str | None,
    landmarks: str,
    device: str,
    runtime: str | None,
    batch_size: int | None,
    precision: str,
    every: int | None,
    sample_fps: float | None,
    resume: bool,
    save_landmarks: bool,
    faces: str,
    workers: str,
    producers: str,
    compile_model: bool,
    address: str | None,
    gpus_per_worker: float | None,
    cpus_per_worker: int | None,
    chunk_frames: int | None,
    image_fps: float | None,
    camera_fov: float | None,
    focal_length: float | None,
    render_dir: Path | None,
    config_path: str,
    quiet: bool,
    verbose: bool,
) -> None:
    """Measure facial Action Unit intensities (AU6, AU10, AU12, AU14, AU17; 0-5) in every frame of
    INPUTS (video files and folders, searched recursively) and write one table (Parquet, or CSV when
    OUT ends in .csv).

    Every face in every decoded frame gets a row, with the id of its track (the person, as far as
    tracking and face descriptors can tell); a frame without a face gets one row with
    face_detected = false and null intensities. A video that cannot be read is named, with the
    reason, in the summary and in OUT's errors file (results.errors.csv beside results.parquet)
    while all other videos complete; the exit status is then 1.
    """
    from dataclasses import replace

    from model.checkpoint import CheckpointError
    from model.weights import WeightsError
    from pipeline.config import load_pipeline_config, with_overrides
    from pipeline.inputs.sources import InputError, NoInputsError
    from pipeline.stages import AnnotateOptions

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if every is not None and sample_fps is not None:
        raise click.UsageError("choose one of --every and --fps")
    if camera_fov is not None and focal_length is not None:
        raise click.UsageError("choose one of --camera-fov and --focal-length")
    worker_count = _count_or_auto(workers, "--workers", minimum=1)
    producer_count = _count_or_auto(producers, "--producers", minimum=0)
    try:
        pipeline = load_pipeline_config(config_path)
        if chunk_frames is not None:
            pipeline = with_overrides(pipeline, decode={"chunk_frames": chunk_frames})
        if image_fps is not None:
            pipeline = with_overrides(pipeline, decode={"image_fps": image_fps})
        if camera_fov is not None:  # the field of view given: not the configured focal length
            pipeline = replace(pipeline, pose=replace(pipeline.faces.pose, camera_fov=camera_fov, focal_length=None))
        if focal_length is not None:
            pipeline = with_overrides(pipeline, pose={"focal_length": focal_length})
        options = AnnotateOptions(
            landmarks=landmarks,
            every=every,
            fps=sample_fps,
            save_landmarks=save_landmarks,
            device=device,
            runtime=runtime,
            batch_size=batch_size,
            precision=precision,
            compile=compile_model,
            pipeline=pipeline,
            faces=faces,
        )
        from pipeline.execution.run import OutputNotWritten, annotate

        try:
            summary = annotate(
                inputs,
                out,
                options,
                weights=weights,
                resume=resume,
                progress=not quiet,
                workers=worker_count,
                producers=producer_count,
                address=address,
                gpus_per_worker=gpus_per_worker,
                cpus_per_worker=cpus_per_worker,
                render_dir=render_dir,
                on_layout=lambda layout: click.echo(f"layout: {layout.describe()}", err=True),
            )
        except OutputNotWritten as exc:
            _print_summary(exc.summary, out, render_dir)
            raise
    except NoInputsError as exc:  # nothing to do is a usage error, not a finished run of 0 videos
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except (WeightsError, CheckpointError, InputError, FileNotFoundError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # one line, never a traceback: what, where, why
        where = f"{exc.filename}: " if exc.filename else ""
        raise click.ClickException(f"{where}{exc.strerror or exc}") from exc
    except KeyboardInterrupt:
        click.echo(
            f"\nInterrupted. Finished videos are kept in {out}.parts/; run again with --resume to go on.", err=True
        )
        sys.exit(130)

    _print_summary(summary, out, render_dir)
    if not summary.ok:
        sys.exit(1)


def _version(ctx: click.Context, value: bool) -> None:
    """``--version``: the installed package's version (without importing the model)."""
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("au-heatmaps")
    except PackageNotFoundError:
        found = "unknown"
    click.echo(f"au-heatmaps, version {found}")
    ctx.exit()


def _print_summary(summary, out: Path, render_dir: Path | None) -> None:
    """The run's summary on stderr: videos, rows, speed, what was kept or redone, what failed."""
    click.echo(
        f"{summary.videos_done}/{summary.videos} videos, {summary.rows} rows -> {summary.out} "
        f"({summary.frames_annotated} frames annotated in {summary.seconds:.1f} s, "
        f"{summary.frames_per_second:.1f} frames/s; {summary.items_skipped} work items kept from before)",
        err=True,
    )
    from pipeline.output.faces_found import describe_faces

    for line in describe_faces(summary.faces):
        click.echo(line, err=True)
    if summary.frames_undecodable:
        click.echo(
            f"{sum(summary.frames_undecodable.values())} frames could not be decoded (rows with face_detected = false "
            "and a decode_error): " + ", ".join(f"{v}: {n}" for v, n in sorted(summary.frames_undecodable.items())),
            err=True,
        )
    if summary.items_redone:
        click.echo(
            f"{summary.items_redone} items redone: video changed since the earlier run ("
            + ", ".join(summary.videos_changed)
            + ")",
            err=True,
        )
    if summary.parts_set_aside:
        name, reason = summary.parts_set_aside[0]
        more = f" (and {len(summary.parts_set_aside) - 1} more)" if len(summary.parts_set_aside) > 1 else ""
        click.echo(
            f"{len(summary.parts_set_aside)} part files could not be read, set aside in {summary.damaged_dir}/ "
            f"and their items annotated again: {name}: {reason}{more}",
            err=True,
        )
    if render_dir is not None:
        click.echo(f"overlay videos in {render_dir}/", err=True)
        if summary.overlays_missing:
            click.echo(
                f"no overlay for {len(summary.overlays_missing)} video(s) annotated by an earlier run "
                f"(make them with: au-render {out} VIDEO_ROOT --out {render_dir}): "
                + ", ".join(summary.overlays_missing),
                err=True,
            )
    if summary.failures:
        where = f"listed in {summary.errors_file}" if summary.errors_file else "the errors file could not be written"
        click.echo(f"{len(summary.failures)} failed ({where}):", err=True)
        for failure in summary.failures:
            click.echo(f"  {failure.video}: {failure.reason}", err=True)


def _count_or_auto(value: str, option: str, minimum: int) -> int | None:
    """``auto`` -> None, else a whole number >= ``minimum`` (a click error naming the option otherwise)."""
    if value == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        count = minimum - 1
    if count < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise click.BadParameter(f"{value!r} is not a {kind} whole number or 'auto'", param_hint=option)
    return count


if __name__ == "__main__":
    main()
