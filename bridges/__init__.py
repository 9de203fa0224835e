"""Conversion of trained ReLU rate networks into spiking networks, and the measurements that
verify the firing-rate equivalence (seed 002, section 3.5).

    from bridges import convert
    snn = convert(ann, calibration_images)          # any chain of Linear/Conv2d/BatchNorm/ReLU/pooling
    evidence = snn(images, steps=32)                # [batch, classes]; argmax is the prediction
    run = snn.run(images, steps=32)                 # evidence, per-layer spike counts, synaptic ops
"""

from bridges.conversion import ConversionError, ConversionOptions, SpikingNetwork, SpikingRun, convert

__all__ = ["ConversionError", "ConversionOptions", "SpikingNetwork", "SpikingRun", "convert"]
