"""Spiking models: Brian2 simulations (LIF neurons, STDP, Diehl & Cook 2015) and the one neuron
step of every spiking network in torch (:mod:`spiking.neuron`, surrogate gradients from
snntorch), on which the converted networks run and the surrogate-trained ones will. Importing it
needs neither Brian2's compiler nor CUDA."""
