"""Train the ReLU MLP on 10,000 MNIST images through the Python API and evaluate it.

    python examples/train_mlp.py            # about a minute on 2 CPU cores

The run folder (config, metrics, weights, learning curves) lands in runs/mlp-<time>/.
"""

from idx_datasets import load
from spikebridge.evaluation import confusion_matrix, format_confusion_matrix
from spikebridge.training import TrainConfig, as_tensors, predict, train

config = TrainConfig(epochs=3, batch_size=64, train_images=10_000)
run = train("mlp", {"widths": [784, 400, 400, 10], "dropout": 0.2}, config)

test_images, test_labels = as_tensors(load("mnist", "test"))
predictions = predict(run.model, test_images)
matrix = confusion_matrix(test_labels.numpy(), predictions.numpy())
print(f"test accuracy on all 10,000 test images: {100 * matrix.trace() / matrix.sum():.2f} %")
print(format_confusion_matrix(matrix))
print(f"run folder: {run.directory}")
