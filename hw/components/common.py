"""What the datapath components share: the base class of the components built from a plan
(:class:`PlannedComponent`, :func:`delegate`), the name prefixes of the registers they duplicate on
purpose (:data:`KEEP_PREFIXES`), and, re-exported from :mod:`hw.plan.params`, the format shapes,
beat layout and parameter checks."""

from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.plan.params import (ACC_BITS, OPERAND_BITS, beat_layout, check_divides, check_fmt, check_int,
                            check_int_array, fmt_shape)

__all__ = ["fmt_shape", "beat_layout", "check_int", "check_fmt", "check_int_array", "check_divides", "KEEP_PREFIXES",
           "OPERAND_BITS", "ACC_BITS", "PlannedComponent", "delegate"]

#: Name prefixes of the registers the components duplicate or place on purpose, which the synthesis
#: flow keeps apart when the target's closure policy says so (:attr:`hw.targets.Closure.keep_copies`):
#: the MAC arrays' operand registers (``a0_``/``w0_``, and ``a1_``/``w1_`` in front of the LUT
#: multipliers), one per multiplier so that each can sit next to its DSP block, and every ``dup_``
#: register, a copy made to split a high fanout (conv step counters and window banks, window
#: generator clock enables, window FIFO pointers).
KEEP_PREFIXES = ("a0_", "w0_", "a1_", "w1_", "dup_")


class delegate(property):
    """A read-only property of a :class:`PlannedComponent` that returns the plan's attribute of
    the same name (or the one named by *to*): ``name = delegate("doc")`` in the class body reads
    ``self.plan.name``; ``old = delegate("doc", to="new")`` reads ``self.plan.new``."""

    def __init__(self, doc=None, *, to=None):
        super().__init__(self._get, None, None, doc)
        self.__doc__ = doc          # a property subclass keeps its doc in the instance dict
        self.attr = to

    def __set_name__(self, owner, name):
        if self.attr is None:
            self.attr = name
        if self.__doc__ is None:
            self.__doc__ = f"The plan's :attr:`{self.attr}`."

    def _get(self, component):
        return getattr(component._plan, self.attr)


class PlannedComponent(wiring.Component):
    """Base of the components built from a frozen plan object (:mod:`hw.plan`).

    A subclass names its plan class in :attr:`plan_class` and then has:

    * ``X(**params)``: the component of ``plan_class(**params)`` (the plan validates the
      parameters; subclasses with an explicit keyword signature override ``__init__`` and call
      ``self._build(plan)``);
    * :meth:`from_plan`: the component of a plan built elsewhere (``TypeError`` for another type);
    * :attr:`plan`, and :attr:`latency`, :attr:`ii`, :meth:`timing` delegated to it; further
      read-only parameters and derived values are declared with :func:`delegate`;
    * the signature of :meth:`_members`: by default ``i``, an input stream of ``plan.in_layout``,
      and ``o``, an output stream of ``plan.out_layout``. Components with other ports override
      :meth:`_members`; those that need more state override :meth:`_build` and call ``super()``.

    Nothing is built in :meth:`_build` but the ports, so the emitted Verilog does not depend on
    how the component was constructed.
    """

    #: The plan class (a frozen dataclass of :mod:`hw.plan`) the component is built from.
    plan_class = None

    def __init__(self, **params):
        self._build(self.plan_class(**params))

    @classmethod
    def from_plan(cls, plan, *, src_loc_at=0):
        """The component of *plan*, an instance of :attr:`plan_class`. An unused component warns
        (``UnusedElaboratable``) at the caller, ``src_loc_at`` frames further up."""
        pc = cls.plan_class
        if not isinstance(plan, pc):
            raise TypeError(f"plan must be a {pc.__module__}.{pc.__qualname__}, not {plan!r}")
        self = cls.__new__(cls, src_loc_at=1 + src_loc_at)     # where UnusedElaboratable points
        self._build(plan)
        return self

    def _build(self, plan):
        """Store *plan* and create the ports (:meth:`_members`)."""
        self._plan = plan
        super().__init__(self._members(plan))

    def _members(self, plan):
        """Signature members of the component of *plan*: stream ``i`` in, stream ``o`` out."""
        return {"i": In(stream.Signature(plan.in_layout)), "o": Out(stream.Signature(plan.out_layout))}

    plan = property(lambda self: self._plan, doc="The plan (an instance of :attr:`plan_class`) it is built from.")
    latency = delegate("Latency in cycles (see the class docstring and the plan's ``latency``).")
    ii = delegate("Initiation interval in cycles (the plan's ``ii``).")

    def timing(self, avail, *args, **kwargs):
        """Exact cycle timing: the plan's ``timing`` (same arguments), a :class:`hw.plan.timing.Timing`."""
        return self._plan.timing(avail, *args, **kwargs)
