"""The system cycle model of weight traffic (coded, quantized-uncoded, 8-bit) and its demo networks. Imports hw and sw."""
