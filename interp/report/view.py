"""The run view that report section builders read: a run directory's parsed config, env and
metrics rows (:func:`load_run_view`), read-only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.errors import CorruptFileError, LoadError
from interp.io import read_json, read_jsonl


@dataclass(frozen=True)
class RunView:
    """Read-only view of a run directory: parsed config, env and metrics rows."""

    path: Path
    config: dict[str, Any]
    env: dict[str, Any]
    metrics: tuple[dict[str, Any], ...]

    def read_json(self, relpath: str) -> Any | None:
        """Parse ``path/relpath``; ``None`` if absent, :class:`CorruptFileError` if corrupt."""
        file = self.path / relpath
        if not file.is_file():
            return None
        return read_json(file, what=relpath)

    def rows(self, split: str) -> list[dict[str, Any]]:
        """Metrics rows of one split (``"train"``, ``"val"``, ``"train_eval"``), in file order."""
        return [r for r in self.metrics if r.get("split") == split]

    @property
    def name(self) -> str:
        return self.path.resolve().name


def load_run_view(run_dir: Path) -> RunView:
    """Read ``config.json``, ``env.json`` (optional) and ``metrics.jsonl`` (optional)."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise LoadError(f"not a run directory: {run_dir} (no config.json)")
    config = read_json(config_path, what="run config")
    if not isinstance(config, dict):
        raise CorruptFileError(f"run config {config_path} is not a JSON object")
    env: Any = {}
    env_path = run_dir / "env.json"
    if env_path.is_file():
        env = read_json(env_path, what="run environment")
        if not isinstance(env, dict):
            raise CorruptFileError(f"run environment {env_path} is not a JSON object")
    metrics = tuple(r for r in read_jsonl(run_dir / "metrics.jsonl") if isinstance(r, dict))
    return RunView(path=run_dir, config=config, env=env, metrics=metrics)
