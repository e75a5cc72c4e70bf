"""Plain-Python plans of the accelerator's blocks: parameters, derived values, exact cycle models
and resource estimates, apart from the gateware built from them."""

from .fifo import FIFOPlan as FIFOPlan
from .output import OutputPlan as OutputPlan
from .pointwise import PointwisePlan as PointwisePlan
from .pointwise import ReLUPlan as ReLUPlan
from .pointwise import RequantPlan as RequantPlan
from .pointwise import SlicePlan as SlicePlan
from .pointwise import TanhPlan as TanhPlan
from .pool import PoolPlan as PoolPlan
