"""Every trainer says how long it will take, from its first timed steps (#17)."""

from __future__ import annotations

import interp.progress
from interp.progress import Eta


class Recorder:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def start(self, total: int, done: int = 0, label: str | None = None) -> None:
        pass

    def advance(self, done: int, **info: object) -> None:
        pass

    def note(self, text: str) -> None:
        self.notes.append(text)


def test_eta_says_once_from_the_timed_steps(monkeypatch) -> None:
    now = [0.0]
    monkeypatch.setattr("time.perf_counter", lambda: now[0])
    rec = Recorder()
    eta = Eta(rec, total=100, start=10, what="training", warm=1, timed=3, at_least=20)
    for done in range(11, 101):
        now[0] = 2.0 * done  # every step takes 2 s
        eta.step(done)
    assert rec.notes == [
        "estimated duration ~2.9 min for training (86 more steps x 2.0 s, timed on the first steps)"
    ]
    short = Recorder()
    eta = Eta(short, total=8, at_least=20)  # 4 s left: nothing said
    for done in range(1, 9):
        eta.step(done)
    assert short.notes == []


def test_every_training_command_says_it(tmp_path, monkeypatch) -> None:
    from cli_helpers import invoke

    monkeypatch.setattr(interp.progress, "ETA_AT_LEAST", 0.0)
    train = ["train", "--corpus", "builtin:prose", "--max-chars", "20000", "--tokenizer", "byte",
             "--ctx", "16", "--layers", "1", "--d-model", "16", "--heads", "2", "--d-mlp", "32",
             "--batch-size", "4", "--steps", "8", "--eval-every", "8", "--checkpoint-every", "8",
             "--warmup", "1", "--no-report", "--out", tmp_path / "t"]  # fmt: skip
    grok = ["grok", "--p", "11", "--steps", "8", "--log-every", "4", "--out", tmp_path / "g"]
    for args in (train, grok):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        said = " ".join(result.stderr.split())  # rich wraps long lines
        assert "estimated duration ~" in said and "timed on the first steps" in said
