"""Bounded model checks (SymbiYosys + boolector) of the bit buffer, scheduler and table against plain models. Imports hw and sw."""
