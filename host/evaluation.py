"""The result of running one variant on a labelled dataset: top-1 predictions and accuracy.

Every path that turns a model's outputs into accuracy — ``host eval``, a campaign row, a
robustness probe, the reference pass — goes through :func:`top1` and :class:`Evaluation`, so
they count the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from host.data import check_labels
from host.decode import DecodedWeights
from host.executors.base import Executor


def top1(logits: np.ndarray) -> np.ndarray:
    """Top-1 class per sample of ``logits`` (samples, ...): the first index on ties."""
    return np.asarray(logits).reshape(len(logits), -1).argmax(axis=1)


@dataclass
class Evaluation:
    """One variant on a dataset (keys of ``to_json`` are stable).

    Attributes:
        predictions, labels: int64 (samples,).
        nulled: tensor name -> weights the host decoder nulled (parity or SECDED failures).
        corrected: bits SECDED corrected.
        flips: payload bits that differ from the golden image (None: not known, e.g. a dump
            evaluated alone).
        backend: the executor that ran it.
        extra: the executor's own measurements (``Outputs.extra``).
    """

    predictions: np.ndarray
    labels: np.ndarray
    nulled: dict[str, int]
    corrected: int = 0
    flips: int | None = None
    backend: str = "onnxruntime"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, logits: np.ndarray, labels: np.ndarray, variant: DecodedWeights, *,
           flips: int | None = None, backend: str = "onnxruntime",
           extra: dict[str, Any] | None = None) -> Evaluation:
        """Top-1 of ``logits`` against ``labels`` (refusing labels the model cannot output)."""
        n = len(labels)
        scores = np.asarray(logits).reshape(n, -1)
        y = np.asarray(labels).astype(np.int64)
        check_labels(y, scores.shape[1], "labels")
        return cls(top1(scores), y, dict(variant.nulled), variant.total_corrected, flips,
                   backend, dict(extra or {}))

    @property
    def samples(self) -> int:
        return int(self.labels.size)

    @property
    def right(self) -> np.ndarray:
        """Mask of the samples classified correctly."""
        return self.predictions == self.labels

    @property
    def correct(self) -> int:
        return int(np.sum(self.right))

    @property
    def accuracy(self) -> float:
        return self.correct / self.samples if self.samples else float("nan")

    @property
    def total_nulled(self) -> int:
        return int(sum(self.nulled.values()))

    def failures(self, reference_right: np.ndarray) -> int:
        """Samples the original model gets right and this variant gets wrong."""
        return int(np.count_nonzero(reference_right & ~self.right))

    def to_json(self) -> dict:
        return {
            "backend": self.backend, "samples": self.samples, "correct": self.correct,
            "accuracy": self.accuracy, "nulled": self.total_nulled,
            "nulled_per_tensor": {k: int(v) for k, v in self.nulled.items()},
            "detected": self.total_nulled, "corrected": int(self.corrected),
            "flips": self.flips, "predictions": self.predictions.astype(int).tolist(),
            **self.extra,
        }


def run_variant(executor: Executor, variant: DecodedWeights, x: np.ndarray, y: np.ndarray, *,
                flips: int | None = None) -> Evaluation:
    """Run one decoded variant on samples ``x`` and score it against labels ``y``: the step
    every evaluation takes (``host eval``, each campaign variant, each robustness trial)."""
    out = executor.run(variant, x)
    return Evaluation.of(out.logits, y, variant, flips=flips, backend=executor.name,
                         extra=out.extra)
