// Simulator main loop for cocotb testbenches on Verilator, with the clock toggled here in C++.
//
// cocotb's own Verilator main (cocotb/share/lib/verilator/verilator.cpp) advances time only from
// one VPI callback to the next, so a cocotb Clock costs a timed callback, a VPI write and its
// bookkeeping at every clock edge. This main toggles the top-level clock input itself, every
// LENET5_HALF_PERIOD time steps (clock low from time 0, first rising edge at one half period),
// and runs the VPI callbacks of the testbench (timers, value changes, read-write and read-only
// synchronisation) in every time step as cocotb's main does, so a testbench that starts no Clock
// of its own sees the same waveform and the same callbacks. The simulation ends with $finish
// (cocotb's, at the end of its tests).
//
// Build with -CFLAGS "-DLENET5_HALF_PERIOD=<time steps>" (and -DLENET5_CLOCK=<port>, default clk);
// the build option ``main`` of sim.runner.run_cocotb puts this file in place of cocotb's.
// No waveform tracing: builds with waves keep cocotb's main.

#include <cstdint>
#include <memory>

#include "Vtop.h"
#include "verilated.h"
#include "verilated_vpi.h"

#ifndef LENET5_CLOCK
#define LENET5_CLOCK clk
#endif
#ifndef LENET5_HALF_PERIOD
#error "define LENET5_HALF_PERIOD: half the clock period in simulator time steps"
#endif

static uint64_t now = 0;  // simulation time (time steps)

double sc_time_stamp() { return static_cast<double>(now); }  // Verilator's time source

extern "C" void vlog_startup_routines_bootstrap(void);  // cocotb's VPI entry (libcocotbvpi_verilator)

namespace {

// Value-change callbacks may change signals that other ones watch: call them until none fires.
bool settle_value_changes() {
    const bool any = VerilatedVpi::callValueCbs();
    if (any) {
        while (VerilatedVpi::callValueCbs()) {
        }
    }
    return any;
}

// The regions of one time step after its start: evaluation with the inertial writes and value
// changes it causes, until stable; then read-write synchronisation (which may write: again from
// the top); then read-only synchronisation.
void finish_time_step(Vtop* top) {
    do {
        do {
            top->eval_step();
            VerilatedVpi::clearEvalNeeded();
            VerilatedVpi::doInertialPuts();
            settle_value_changes();
        } while (VerilatedVpi::evalNeeded());
        VerilatedVpi::callCbs(cbReadWriteSynch);
        VerilatedVpi::doInertialPuts();
        settle_value_changes();
    } while (VerilatedVpi::evalNeeded());
    top->eval_end_step();
    VerilatedVpi::callCbs(cbReadOnlySynch);
}

}  // namespace

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    std::unique_ptr<Vtop> top{new Vtop{""}};
    Verilated::fatalOnVpiError(false);  // cocotb probes for system tasks it may not find
    vlog_startup_routines_bootstrap();
    Verilated::addExitCb([](void*) { VerilatedVpi::callCbs(cbEndOfSimulation); }, nullptr);
    top->LENET5_CLOCK = 0;
    VerilatedVpi::callCbs(cbStartOfSimulation);
    settle_value_changes();

    const uint64_t half_period = LENET5_HALF_PERIOD;
    uint64_t next_edge = half_period;
    while (!Verilated::gotFinish()) {
        finish_time_step(top.get());
        // With no timer scheduled (all ones) the clock goes on: the testbench may be waiting for
        // an edge; cocotb ends the simulation ($finish) when its tests are done.
        const uint64_t deadline = VerilatedVpi::cbNextDeadline();
        const bool edge = next_edge <= deadline;
        now = edge ? next_edge : deadline;
        // Start of the next time step: next-time callbacks, the clock edge, due timers.
        VerilatedVpi::callCbs(cbNextSimTime);
        settle_value_changes();
        if (edge) {
            top->LENET5_CLOCK = !top->LENET5_CLOCK;
            next_edge += half_period;
        }
        if (now == deadline) {
            VerilatedVpi::callTimedCbs();
            settle_value_changes();
        }
    }
    top->final();  // runs the exit callback: end-of-simulation to cocotb
    return Verilated::threadContextp()->errorCount() > 0 ? 1 : 0;
}
