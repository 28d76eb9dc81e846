"""cocotb testbenches of the generated Verilog (decoder core, fetch path, RAM models) with their drivers and Verilator/Icarus build helpers. Imports hw and sw."""
