"""cocotb testbenches and runners that check the generated Verilog against the golden model.

Running cocotb on Verilog:
    :mod:`sim.runner`     ``run_cocotb`` / ``simulate_component`` (build, run, check results)
    :mod:`sim.cache`      build folders keyed by the hash of sources and build recipe
    :mod:`sim.verilator`  the cocotb runners with this project's Verilator additions
    :mod:`sim.toolchain`  simulator choice, versions, waveform format
    :mod:`sim.streams`    stream drivers and bit packing for testbenches
The whole accelerator on MNIST:
    :mod:`sim.accel`      ``simulate`` (sharded, bit-exact against golden) and ``reset_test``
    :mod:`sim.images`     ``load_images`` / ``ImageSet`` (MNIST, ``.npy``, PNG folders)
    :mod:`sim.shards`     one simulator process of the accelerator testbench
    :mod:`sim.harness`    the batch harness (Amaranth) of the fast path; :mod:`sim.stall` its
                          stall patterns in plain Python
    :mod:`sim.diagnose`   locating a mismatch stage by stage on a build with tap ports
Testbenches (run inside the simulator): :mod:`sim.tb`.
"""
