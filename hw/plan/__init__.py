from .mac import MACPlan  # noqa: F401
from .window import WindowPlan  # noqa: F401
from .conv import ConvPlan, ConvSchedule, conv_schedule  # noqa: F401
from .dense import DensePlan  # noqa: F401
