"""Flip-Flop, selective copy and counting with variables, checked against their own rules.

Each generator is vectorised (or tokenised); the checks here decode the tokens and replay the
rules one symbol at a time.
"""

from __future__ import annotations

import pytest
import torch

from interp.errors import ConfigError
from interp.tasks import build_task, task_names


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_tasks_are_registered() -> None:
    assert {"flipflop", "selective-copy", "count-vars"} <= set(task_names())


@pytest.mark.parametrize("split", ["train", "val", "ood_dense", "ood_sparse"])
def test_flipflop_follows_its_rules(split: str) -> None:
    task = build_task("flipflop", {"length": 40})
    batch = task.sample(64, gen(1), split)
    names = task.token_names()
    assert batch.inputs.shape == (64, 80) and task.model_overrides()["n_ctx"] == 80
    n_ignore = 0
    for row, target, mask in zip(batch.inputs, batch.targets, batch.mask, strict=True):
        words = [names[t] for t in row.tolist()]
        instr, bits = words[0::2], words[1::2]
        assert set(instr) <= {"w", "r", "i"} and set(bits) <= {"0", "1"}
        assert instr[0] == "w" and instr[-1] == "r"
        memory = None
        for t, (op, bit) in enumerate(zip(instr, bits, strict=True)):
            if op == "w":
                memory = bit
            elif op == "r":
                assert bit == memory
            assert bool(mask[2 * t]) == (op == "r") and not mask[2 * t + 1]
            if op == "r":
                assert names[int(target[2 * t])] == bit
        n_ignore += instr[1:-1].count("i")
    freq = n_ignore / (64 * 38)
    assert abs(freq - task.p_for(split)) < 0.05


@pytest.mark.parametrize("split", ["train", "val", "ood_sparse", "ood_long"])
def test_selective_copy_follows_its_rules(split: str) -> None:
    task = build_task("selective-copy", {"n_copy": 5, "length": 12, "vocab": 6})
    n, length = task.shape_for(split)
    batch = task.sample(32, gen(2), split)
    names = task.token_names()
    assert batch.inputs.shape == (32, length + 1 + n)
    assert batch.inputs.shape[1] <= task.model_overrides()["n_ctx"]
    for row, target, mask in zip(batch.inputs, batch.targets, batch.mask, strict=True):
        words = [names[t] for t in row.tolist()]
        body, sep, copy = words[:length], words[length], words[length + 1 :]
        assert sep == "<sep>"
        data = [w for w in body if w != "_"]
        assert data == copy and len(data) == n
        scored = [names[int(t)] for t in target[mask]]
        assert scored == copy
        assert mask.nonzero().flatten().tolist() == list(range(length, length + n))


def run_program(words: list[str]) -> int:
    """Interpret a tokenised program up to ``print x`` and return the printed value."""
    values: dict[str, int] = {}
    i = 0
    while words[i] != "print":
        if words[i] == "pass;":
            i += 1
        elif words[i + 1] == "=":
            assert words[i + 2] == "0" and words[i + 3] == ";"
            values[words[i]] = 0
            i += 4
        else:
            assert words[i + 1] == "++;" and words[i] in values
            values[words[i]] += 1
            assert values[words[i]] <= 10
            i += 2
    return values[words[i + 1]]


@pytest.mark.parametrize(("n_vars", "split"), [(1, "train"), (3, "val"), (5, "ood_long")])
def test_count_vars_follows_its_rules(n_vars: int, split: str) -> None:
    task = build_task("count-vars", {"n_vars": n_vars, "max_steps": 40})
    lo, hi = task.steps_for(split)
    batch = task.sample(24, gen(3), split)
    names = task.token_names()
    assert batch.inputs.shape[1] <= task.model_overrides()["n_ctx"]
    steps_seen = []
    for row, target, mask in zip(batch.inputs, batch.targets, batch.mask, strict=True):
        words = [names[t] for t in row.tolist()]
        length = len(words) - words.count("<pad>")
        assert all(w == "<pad>" for w in words[length:])
        assert words[length - 3] == "print"
        assert set(words[: length - 3]) <= {"pass;", "=", "0", ";", "++;"} | set(
            "abcdefghijklmnopqrstuvwxyz"[:n_vars]
        )
        answer = run_program(words)
        assert mask.nonzero().flatten().tolist() == [length - 2]
        assert names[int(target[length - 2])] == str(answer) == words[length - 1]
        steps = words[: length - 3].count("pass;") + words.count("++;") + words.count("=")
        steps_seen.append(steps)
        assert lo <= steps <= hi
    assert max(steps_seen) > lo  # lengths vary


def test_count_vars_op_frequencies_follow_the_weights() -> None:
    task = build_task("count-vars", {"n_vars": 3, "max_steps": 200, "min_steps": 200})
    batch = task.sample(20, gen(4), "train")
    names = task.token_names()
    words = [names[t] for t in batch.inputs.flatten().tolist()]
    n_pass, n_set, n_inc = words.count("pass;"), words.count("="), words.count("++;")
    total = n_pass + n_set + n_inc
    assert total == 20 * 200
    # SET and DUMMY never fail, so they keep their 1 : 50 ratio; INCREMENTs that would pass
    # the maximum value are redrawn, so their share is at most 7 / 58
    assert 0.012 < n_set / n_pass < 0.03
    assert n_inc / total < 7 / 58 + 0.02


def test_samples_are_reproducible_per_generator() -> None:
    for name in ("flipflop", "selective-copy", "count-vars"):
        task = build_task(name, {"max_steps": 16} if name == "count-vars" else {})
        a, b = task.sample(4, gen(7), "val"), task.sample(4, gen(7), "val")
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.mask, b.mask)


@pytest.mark.parametrize(
    ("name", "options", "split", "message"),
    [
        ("flipflop", {"length": 1}, "train", "length must be >= 2"),
        ("flipflop", {}, "ood", "no split 'ood'"),
        ("selective-copy", {"n_copy": 9, "length": 4}, "train", "must be >= n_copy"),
        ("count-vars", {"n_vars": 0}, "train", "n_vars must be in 1..26"),
        ("count-vars", {}, "test", "no split 'test'"),
        ("flip-flop", {}, "train", "unknown task 'flip-flop'"),
    ],
)
def test_bad_task_input_is_one_line(name: str, options: dict, split: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        build_task(name, options).sample(2, gen(), split)
    assert "\n" not in str(e.value)
