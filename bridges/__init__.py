"""Conversion of trained ReLU and log rate networks into spiking networks, and the measurements
that verify the firing-rate equivalence. Filled in by later work."""
