"""Spiking models: Brian2 simulations (LIF neurons, STDP, Diehl & Cook 2015) and snntorch
surrogate-gradient networks. Filled in by later work; importing it needs neither Brian2's
compiler nor CUDA."""
