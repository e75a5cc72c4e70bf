"""cocotb testbenches and runners that check the generated Verilog against the golden model."""
