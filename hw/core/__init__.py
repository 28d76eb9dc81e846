"""The tANS decoder core: state vector, bit buffer, lane scheduler, decode table, RAM targets, port layouts and parameters. Imports amaranth and sw.tans only."""
