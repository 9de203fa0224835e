"""spikebridge: the application layer of the toolkit (training, run folders, comparison, CLI).

The model packages (:mod:`rate_models`, :mod:`spiking`, :mod:`bridges`) and the data layer
(:mod:`idx_datasets`) know nothing of this package; it puts them to work.
"""

__version__ = "0.1.0"
