"""Static schedule of a folded convolution (:class:`hw.plan.conv.ConvPlan`): output channels
balanced over MAC lanes by exact bin packing, and the lanes that can share a window bank.

Plain Python.
"""

from dataclasses import dataclass

__all__ = ["ConvSchedule", "conv_schedule", "share_banks", "PACK_BUDGET"]


def share_banks(chan_words, lanes_per_bank: int):
    """Group MAC lanes that can share a window bank and its channel multiplexers.

    Parameters
    ----------
    chan_words : sequence of sequence of int
        ``chan_words[l][n]``: lane ``l``'s input channel one-hot in connection slot ``n`` (the
        slot ROM's ``chan`` field; 0 for a padding slot).
    lanes_per_bank : int
        At most this many lanes per bank (>= 1).

    Returns
    -------
    list of list of int
        Lane indices per bank, in increasing order of their first lane: lanes with the same
        one-hot sequence, in lane order, cut into runs of ``lanes_per_bank``. Every lane is in
        exactly one bank.

    Raises
    ------
    ValueError
        ``lanes_per_bank < 1``.
    """
    if lanes_per_bank < 1:
        raise ValueError(f"lanes_per_bank must be at least 1, not {lanes_per_bank}")
    same = {}
    for l, words in enumerate(chan_words):
        same.setdefault(tuple(words), []).append(l)
    banks = [lanes[i:i + lanes_per_bank] for lanes in same.values()
             for i in range(0, len(lanes), lanes_per_bank)]
    return sorted(banks)


@dataclass(frozen=True)
class ConvSchedule:
    """Static schedule of one output position (computed in Python at construction).

    Members
    -------
    lanes : tuple of tuple of int
        ``lanes[l]``: the output channels lane ``l`` computes, in order.
    slots : tuple of tuple of (int, int)
        ``slots[l][n]``: the connection ``(o, i)`` lane ``l`` works on in slot ``n``;
        ``i = -1`` marks a padding slot (zero weights) that extends the lane's last output channel
        up to the longest lane.
    slot_cycles : int
        Cycles per connection, ``K*K / taps``.
    """

    lanes: tuple
    slots: tuple
    slot_cycles: int

    @property
    def connections(self):
        """Real connections per lane (padding slots excluded)."""
        return tuple(sum(i >= 0 for _, i in s) for s in self.slots)

    @property
    def slots_per_position(self):
        """Slots per position: the largest lane's connection count."""
        return len(self.slots[0])

    @property
    def cycles_per_position(self):
        """MAC steps per position: ``slots_per_position * slot_cycles``."""
        return self.slots_per_position * self.slot_cycles


#: Search nodes allowed to :func:`_pack` per candidate makespan before it gives up.
PACK_BUDGET = 50_000


def _pack(sizes, bins, capacity):
    """Items ``sizes`` (sorted by decreasing size) into ``bins`` bins of ``capacity``, or None.

    Depth-first search over items, trying each distinct bin load once (bins with equal loads
    are interchangeable). Returns the bin index of each item, None when impossible, and raises
    ``TimeoutError`` after :data:`PACK_BUDGET` nodes.
    """
    loads = [0] * bins
    where = [0] * len(sizes)
    remaining = [0] * (len(sizes) + 1)
    for n in range(len(sizes) - 1, -1, -1):
        remaining[n] = remaining[n + 1] + sizes[n]
    budget = [PACK_BUDGET]

    def place(n):
        if n == len(sizes):
            return True
        budget[0] -= 1
        if budget[0] < 0:
            raise TimeoutError
        if remaining[n] > sum(capacity - load for load in loads):
            return False
        tried = set()
        for b in range(bins):
            if loads[b] in tried or loads[b] + sizes[n] > capacity:
                continue
            tried.add(loads[b])
            loads[b] += sizes[n]
            where[n] = b
            if place(n + 1):
                return True
            loads[b] -= sizes[n]
        return False

    return list(where) if place(0) else None


def conv_schedule(table, out_lanes: int, slot_cycles: int) -> ConvSchedule:
    """Assign output channels to ``out_lanes`` lanes, balancing their connection counts.

    Minimises the largest lane load (connections per lane), each output channel staying in one
    lane. Greedy longest-first (channels by decreasing connection count, ties: lower channel
    first, each onto the least loaded lane, ties: lower lane) gives an upper bound; then every
    smaller load down from ``max(ceil(connections / out_lanes), largest channel)`` is tried by
    an exact search (:func:`_pack`), keeping the greedy assignment if the search exceeds its
    budget. C3 (60 connections) on 4 lanes: 15 per lane (greedy alone: 16). Each lane computes its
    channels in increasing channel order, each channel's connections in ``table[o]`` order;
    shorter lanes are padded with zero-weight slots on their last channel.
    """
    order = sorted(range(len(table)), key=lambda o: (-len(table[o]), o))
    sizes = [len(table[o]) for o in order]
    load = [0] * out_lanes
    where = []
    for size in sizes:
        lane = min(range(out_lanes), key=lambda l: (load[l], l))
        where.append(lane)
        load[lane] += size
    lower = max(-(-sum(sizes) // out_lanes), sizes[0])
    ascending = sorted(sizes)
    for capacity in range(lower, max(load)):
        fits = 0                            # most channels one lane can hold at this load
        while fits < len(ascending) and sum(ascending[:fits + 1]) <= capacity:
            fits += 1
        if fits * out_lanes < len(sizes):
            continue
        try:
            packed = _pack(sizes, out_lanes, capacity)
        except TimeoutError:
            break
        if packed is not None:
            where = packed
            break
    members = [sorted(o for o, lane in zip(order, where) if lane == l) for l in range(out_lanes)]
    members = sorted((m for m in members if m), key=lambda m: m[0]) + [m for m in members if not m]
    longest = max(sum(len(table[o]) for o in m) for m in members)
    slots = []
    for outs in members:
        lane_slots = [(o, i) for o in outs for i in table[o]]
        lane_slots += [(outs[-1], -1)] * (longest - len(lane_slots))
        slots.append(tuple(lane_slots))
    return ConvSchedule(tuple(tuple(m) for m in members), tuple(slots), slot_cycles)
