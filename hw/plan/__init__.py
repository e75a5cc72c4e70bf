"""Plain-Python plans of the accelerator's blocks: parameters, derived values, exact cycle models
and resource estimates, apart from the gateware built from them.

Block plans (one per component of :mod:`hw.components`): :class:`MACPlan`, :class:`WindowPlan`,
:class:`ConvPlan` (with its :class:`ConvSchedule`), :class:`DensePlan`, :class:`PoolPlan`,
:class:`RequantPlan`, :class:`TanhPlan`, :class:`ReLUPlan`, :class:`SlicePlan`,
:class:`OutputPlan`, :class:`FIFOPlan`, :class:`RBFPlan` (the squared-distance engine of an RBF
output layer). The network's plan is :class:`hw.plan.net.NetPlan`
(made by an architecture, :mod:`hw.arch`); folds are :mod:`hw.plan.fold`; the cycle-model
conventions are :mod:`hw.plan.timing`.
"""

from .conv import ConvPlan, ConvSchedule, conv_schedule
from .dense import DensePlan
from .fifo import FIFOPlan
from .mac import MACPlan
from .output import OutputPlan
from .pointwise import PointwisePlan, ReLUPlan, RequantPlan, SlicePlan, TanhPlan
from .pool import PoolPlan
from .rbf import RBFPlan
from .window import WindowPlan

__all__ = ["ConvPlan", "ConvSchedule", "conv_schedule", "DensePlan", "FIFOPlan", "MACPlan", "OutputPlan",
           "PointwisePlan", "ReLUPlan", "RequantPlan", "SlicePlan", "TanhPlan", "PoolPlan", "RBFPlan", "WindowPlan"]
