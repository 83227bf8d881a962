"""The executor interface: one decoded variant of an image in, the model's outputs out.

An executor runs the model an image stores, with the weights of one variant (a clean or noisy
payload and what it decodes to, :class:`~host.decode.DecodedWeights`), on a batch of samples
shaped for the model. It is built once per image layout (``for_image``) and then run on any
number of variants of that layout: this is where campaigns and ``host eval`` meet.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from host.decode import DecodedWeights
from host.errors import FlipLabError
from host.image import Image


@dataclass
class Outputs:
    """What an executor returns for a batch.

    Attributes:
        logits: float (samples, classes): scores whose argmax is the top-1 class.
        extra: backend-specific measurements with stable JSON keys (the accelerator's
            ``cycles_per_inference`` and ``detected`` parity failures).
    """

    logits: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


class Executor(ABC):
    """Runs the model of one image layout on decoded variants.

    Subclasses set :attr:`name` (the registry key, ``host eval --backend NAME``) and
    :attr:`options` (the keyword options ``for_image`` accepts, with their help text).
    """

    name: ClassVar[str] = ""
    #: keyword options of ``for_image`` a user may set: {name: help}
    options: ClassVar[dict[str, str]] = {}
    #: ``for_image`` takes ``progress=True`` to show a bar (slow executors only)
    shows_progress: ClassVar[bool] = False

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Refuse an option this executor does not take (it would be silently ignored)."""
        unknown = sorted(k for k, v in options.items() if v is not None and k not in cls.options)
        if unknown:
            takes = ", ".join(f"--{k}" for k in cls.options) or "no options"
            raise FlipLabError(f"option --{unknown[0]} does not apply to the {cls.name} "
                               f"backend (it takes {takes})")

    @classmethod
    @abstractmethod
    def for_image(cls, image: Image, **options: Any) -> Executor:
        """An executor for ``image``'s layout. Cheap checks that can refuse the image come
        first, before any slow set-up, as one-line FlipLabErrors."""

    @abstractmethod
    def run(self, variant: DecodedWeights, x: np.ndarray) -> Outputs:
        """The model's outputs for samples ``x`` with the weights of ``variant``."""
