"""Board demos: a self-checking demo top, the serial harness for place and route, and amaranth-boards builds. Imports hw.core and sw."""
