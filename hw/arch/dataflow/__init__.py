"""The layer-pipelined ``dataflow`` architecture: every layer its own datapath, streams between.

``s_axis`` -> C1 conv engine (2-pixel zero border generated in hardware) -> requantizer (ReLU
folded in) [-> tanh table] -> S2 pooling [avg: -> requantizer -> tanh] -> C3 conv engine
(connection table) -> ... -> C5, F6, OUT dense engines -> requantizer -> classifier output ->
``m_axis``.

* :mod:`.planning`: :func:`plan` (the :class:`hw.plan.net.NetPlan`: stages, fold search, DSP
  allocation, FIFO sizing, predicted II and latency), pure Python;
* :mod:`.top`: :func:`build` and :class:`LeNet5Accelerator`, the gateware.
"""

from hw.plan.fold import Fold, FoldError, LayerFold

from .planning import (DEFAULT_TARGET_II, FIFO_LATENCY, MODEL_FRAMES, complete_fold, default_fold, dsp_allocation,
                       plan, predict, preset_folds, target_fold)
from .top import LeNet5Accelerator, Stage, build

__all__ = ["plan", "build", "LeNet5Accelerator", "Stage", "Fold", "FoldError", "LayerFold", "default_fold",
           "complete_fold", "dsp_allocation", "predict", "preset_folds", "target_fold", "DEFAULT_TARGET_II", "FIFO_LATENCY", "MODEL_FRAMES"]
