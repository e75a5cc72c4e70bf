"""Cycle-exact timing models of the stream components (transaction level).

Every datapath component offers ``timing(avail) -> Timing``: a Python model, computed from the
component's parameters, of *when* it accepts each input beat and produces each output beat. The
generator composes these models to predict the accelerator's latency and initiation interval, and
each component's testbench checks its model against the emitted Verilog cycle for cycle.

Conventions (cycle numbers as counted by ``sim.streams.cycle_of``: a beat "happens" in the cycle
at whose end ``valid & ready`` is sampled high):

* ``avail[k]`` is the earliest cycle in which input beat ``k`` may be offered. The producer offers
  beat ``k`` in cycle ``max(avail[k], accept[k-1] + 1)`` and holds it until it is accepted
  (``valid`` never waits for ``ready``). ``avail`` may cover several frames back to back.
* The consumer of the output is always ready, so an output beat is transferred in the first
  cycle in which it is valid: ``out[j]`` is that cycle.
* ``Timing.accept[k]`` is the cycle in which input beat ``k`` is accepted.

A component with latency ``L`` and ``ii == 1`` that never stalls while its output is ready has
``accept[k] = offer[k]`` and ``out[k] = accept[k] + L`` (:func:`pipeline`).
"""

from dataclasses import dataclass

__all__ = ["Timing", "pipeline", "offers", "chain"]


@dataclass(frozen=True)
class Timing:
    """Result of a timing model.

    Members
    -------
    accept : list of int
        Cycle in which each input beat was accepted.
    out : list of int
        Cycle in which each output beat was valid (and, the consumer being ready, transferred).
    """

    accept: list
    out: list


def offers(avail):
    """Offer cycles of a producer that is never refused: ``max(avail[k], offer[k-1] + 1)``."""
    result, last = [], None
    for a in avail:
        last = a if last is None else max(a, last + 1)
        result.append(last)
    return result


def pipeline(avail, latency):
    """Timing of an II=1 pipeline of ``latency`` cycles that is always ready while its output is.

    One output beat per input beat: ``out[k] = accept[k] + latency``.
    """
    accept = offers(avail)
    return Timing(accept, [a + latency for a in accept])


def chain(avail, *stages):
    """Compose timing models: the output cycles of one stage are the ``avail`` of the next.

    Valid when every stage but the last is followed by a consumer that never refuses it (a
    buffer deep enough for the traffic, or a stage whose model says it accepts at once).
    Returns the last stage's :class:`Timing` with ``accept`` of the first stage.
    """
    first = None
    t = None
    for stage in stages:
        t = stage(avail)
        if first is None:
            first = t.accept
        avail = t.out
    return Timing(first, t.out)

