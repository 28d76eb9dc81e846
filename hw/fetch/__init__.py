"""The weight-fetch path from memory to the compute units: AXI read master, descriptors, datapath, dequantizer, top level and memory image. Imports hw.core and sw."""
