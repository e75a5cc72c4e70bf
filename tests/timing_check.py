"""Check a component's cycle model (``timing(avail)``, see hw.plan.timing) in Amaranth's simulator.

The input is offered beat by beat no earlier than ``avail[k]`` (and held until accepted), the
output is always ready; the accept and output cycles must equal the model exactly.
"""

from amaranth.sim import Simulator


def measure(dut, payloads, avail, max_cycles=None):
    """Simulate; return (accept cycles, output cycles, output payload values as ints)."""
    accept, out, values = [], [], []
    n_in = len(payloads)
    max_cycles = max_cycles or (avail[-1] + 50 * n_in + 1000)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    done = {"in": False}

    async def source(ctx):
        cycle = 0
        for k, payload in enumerate(payloads):
            while cycle < avail[k]:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
                cycle += 1
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, payload)
            while True:
                _, _, ready = await ctx.tick().sample(dut.i.ready)
                cycle += 1
                if ready:
                    accept.append(cycle - 1)
                    break
        ctx.set(dut.i.valid, 0)
        done["in"] = True

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        for cycle in range(max_cycles):
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                out.append(cycle)
                values.append(payload)

    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return accept, out, values


def check_timing(dut, payloads, avail):
    """Assert ``dut.timing(avail)`` equals the simulated accept and output cycles."""
    accept, out, values = measure(dut, payloads, avail)
    model = dut.timing(avail)
    for what, got, want in (("accept", accept, model.accept), ("output", out, model.out)):
        for k, (g, w) in enumerate(zip(got, want)):
            assert g == w, f"{what} beat {k}: simulated cycle {g}, model {w}"
        assert len(got) == len(want), f"{what}: {len(got)} beats simulated, model has {len(want)}"
    return values
