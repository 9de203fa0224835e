"""Conversion of trained rate networks into spiking networks, and the measurements that verify
the firing-rate equivalence (Gupta & Naveed, "How close are ANNs to the brain?", section 3.5)
and the Weber-Fechner coding of the log network (Thériault & François 2021,
:mod:`bridges.log_coding`).

    from bridges import convert
    snn = convert(ann, calibration_images)          # any chain of Linear/Conv2d/BatchNorm/ReLU/pooling,
                                                    # or a rate_models.LogNetwork
    evidence = snn(images, steps=32)                # [batch, classes]; argmax is the prediction
    run = snn.run(images, steps=32)                 # evidence, per-layer spike counts, synaptic ops
"""

from bridges.common import ConversionError, SpikingRun
from bridges.conversion import ConversionOptions, SpikingNetwork, convert

__all__ = ["ConversionError", "ConversionOptions", "SpikingNetwork", "SpikingRun", "convert"]
