"""Memorisation and grokking steps, and PAIR's run labels.

* memorisation step: the first logged step with train accuracy >= ``memorise_acc`` (0.99);
* grokking step: the first logged step with test accuracy >= ``grok_acc`` (0.95, the issue's);
* label (PAIR's rule on the logged cross-entropy losses, thresholds in :class:`LabelRule`):
  ``no-learn``  if min train loss > ``learn_loss``;
  ``memorise``  elif min test loss > ``generalise_loss``;
  ``grok``      elif max over logged steps of test loss / train loss >= ``grok_ratio``
                (the train set was fitted long before the test set);
  ``generalise`` otherwise;
* then (interp's, not PAIR's) a ``memorise`` run whose test accuracy still gained more than
  :data:`RISING` over the last tenth of the logged steps is ``still-rising``: training stopped
  before it could tell memorised from grokking (the verdict's "still rising"; try more steps).

PAIR's loss thresholds are 1e-5 / 1e-5 / 5e4.  With cross-entropy and weight decay they mislabel
our runs (measured, p = 67, lr 3e-3: a wd-1 run at 100% test accuracy had min test loss 1.1e-5
-> "memorise"; wd-2 runs at 100% test accuracy never took train loss below 1e-5 -> "no-learn"),
because weight decay bounds the logits.  Our defaults are therefore 0.1 / 0.1 (a loss of 0.1 is
~90% probability on the right class) with PAIR's ratio 5e4; ``LabelRule.pair()`` gives PAIR's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from interp.config import _Config

LABELS = ("no-learn", "memorise", "still-rising", "grok", "generalise")
PAIR_LABELS = ("no-learn", "memorise", "grok", "generalise")  # PAIR's rule's own (label_run)
RISING = 0.02  # a test-accuracy gain over the last tenth of the logged steps that is "rising"


@dataclass(frozen=True)
class LabelRule(_Config):
    learn_loss: float = 0.1
    generalise_loss: float = 0.1
    grok_ratio: float = 5e4
    memorise_acc: float = 0.99
    grok_acc: float = 0.95

    @classmethod
    def pair(cls) -> LabelRule:
        """PAIR's published loss thresholds."""
        return cls(learn_loss=1e-5, generalise_loss=1e-5)


def complete_rows(*columns: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``columns`` (zipped, equal lengths) where no value is ``None``: the logged
    steps of curves that are only evaluated every so often."""
    return [row for row in zip(*columns, strict=True) if all(v is not None for v in row)]


def first_step_at_least(
    steps: Sequence[int], values: Sequence[float | None], threshold: float
) -> int | None:
    for step, value in zip(steps, values, strict=True):
        if value is not None and value >= threshold:
            return int(step)
    return None


def label_run(
    train_loss: Sequence[float | None], test_loss: Sequence[float | None], rule: LabelRule
) -> str:
    pairs = complete_rows(train_loss, test_loss)
    if not pairs or min(a for a, _ in pairs) > rule.learn_loss:
        return "no-learn"
    if min(b for _, b in pairs) > rule.generalise_loss:
        return "memorise"
    if max(b / max(a, 1e-30) for a, b in pairs) >= rule.grok_ratio:
        return "grok"
    return "generalise"


def last_tenth_gain(
    steps: Sequence[int], train_acc: Sequence[float | None], test_acc: Sequence[float | None]
) -> tuple[float, int] | None:
    """``(gain, window)``: how much test accuracy rose over the last tenth of the logged steps
    (from the first logged step at or after ``last - (last - first) / 10`` to the last), and
    that window in steps; ``None`` if nothing was logged."""
    logged = complete_rows(steps, train_acc, test_acc)
    if not logged:
        return None
    first, last = logged[0][0], logged[-1][0]
    since = next(i for i, (s, _, _) in enumerate(logged) if s >= last - (last - first) / 10)
    return logged[-1][2] - logged[since][2], last - logged[since][0]


def still_rising(
    steps: Sequence[int], train_acc: Sequence[float | None], test_acc: Sequence[float | None]
) -> bool:
    """Test accuracy gained more than :data:`RISING` over the last tenth of training."""
    gain = last_tenth_gain(steps, train_acc, test_acc)
    return gain is not None and gain[0] > RISING


def run_label(
    steps: Sequence[int],
    train_loss: Sequence[float | None],
    test_loss: Sequence[float | None],
    train_acc: Sequence[float | None],
    test_acc: Sequence[float | None],
    rule: LabelRule,
) -> str:
    """PAIR's label (:func:`label_run`), with ``memorise`` made ``still-rising`` where test
    accuracy is still climbing at the end (:func:`still_rising`)."""
    label = label_run(train_loss, test_loss, rule)
    if label == "memorise" and still_rising(steps, train_acc, test_acc):
        return "still-rising"
    return label


def summarise_run(
    steps: Sequence[int],
    train_loss: Sequence[float | None],
    test_loss: Sequence[float | None],
    train_acc: Sequence[float | None],
    test_acc: Sequence[float | None],
    rule: LabelRule,
) -> dict[str, Any]:
    """The steps, the label and the extremes that decided it, for one run."""
    mem = first_step_at_least(steps, train_acc, rule.memorise_acc)
    grok = first_step_at_least(steps, test_acc, rule.grok_acc)
    finite = complete_rows(train_loss, test_loss)
    return {
        "memorisation_step": mem,
        "grokking_step": grok,
        "grok_delay": grok - mem if grok is not None and mem is not None else None,
        "label": run_label(steps, train_loss, test_loss, train_acc, test_acc, rule),
        "min_train_loss": min((a for a, _ in finite), default=None),
        "min_test_loss": min((b for _, b in finite), default=None),
        "max_test_train_ratio": max((b / max(a, 1e-30) for a, b in finite), default=None),
        "final_train_accuracy": train_acc[-1] if train_acc else None,
        "final_test_accuracy": test_acc[-1] if test_acc else None,
    }


def verdict(
    steps: Sequence[int],
    train_acc: Sequence[float | None],
    test_acc: Sequence[float | None],
    rule: LabelRule,
) -> str:
    """One sentence a run has earned: grokked only if test accuracy reached ``grok_acc`` after
    the training set was fitted; "still rising" while the last tenth of training still gains
    more than :data:`RISING`; "inconclusive" if the training set was never fitted."""
    logged = complete_rows(steps, train_acc, test_acc)
    if not logged:
        return "inconclusive: nothing was logged"
    last, final_train, final_test = logged[-1]
    if final_train < rule.memorise_acc:
        return (
            f"inconclusive: the training set was not fitted (train accuracy {final_train:.3f} "
            f"< {rule.memorise_acc}); try more --steps or a larger --lr"
        )
    mem = first_step_at_least(steps, train_acc, rule.memorise_acc)
    grok = first_step_at_least(steps, test_acc, rule.grok_acc)
    if final_test >= rule.grok_acc and grok is not None and mem is not None:
        if grok > mem:
            return f"grokked: memorised at step {mem}, test accuracy >= {rule.grok_acc} at {grok}"
        return f"generalised without a delay: train and test fitted by step {grok}"
    gain, window = last_tenth_gain(steps, train_acc, test_acc) or (0.0, 0)
    if gain > RISING:  # the label's still-rising (run_label) where the loss rule says memorise
        return (
            f"still rising: test accuracy {final_test:.3f}, +{gain:.3f} over the last {window} "
            "steps; try more --steps"
        )
    return (
        f"memorised, not generalised: test accuracy {final_test:.3f} (flat over the last "
        f"{window} steps)"
    )
