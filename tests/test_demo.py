"""The embedded-default job: trains offline on the built-in corpus, then reuses the cache."""

from __future__ import annotations

from typer.testing import CliRunner

from cli.main import app
from interp.demo import DEMO_MODEL, demo_job, demo_run_dir, ensure_demo_model


def test_demo_trains_then_reuses_the_cache() -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--steps", "2"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    path = demo_run_dir(demo_job(2))
    assert (path / "model.safetensors").is_file() and (path / "report.html").is_file()
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    second = runner.invoke(app, ["demo", "--steps", "2"], catch_exceptions=False)
    assert second.exit_code == 0 and "reusing" in second.output
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime
    run, reused = ensure_demo_model(steps=2)
    assert reused and run.path == path


def test_demo_model_positions_fade_with_distance() -> None:
    # collapse analyses need a relative encoding (MISSION.md §2): the default must not be learned absolute
    from interp.models.positional import build_positional

    assert build_positional(DEMO_MODEL).relative
