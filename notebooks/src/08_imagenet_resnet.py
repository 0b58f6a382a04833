# %% [markdown]
# # 08 · An ImageNet-class network on real photographs: Partition, DeepSHAP and integrated gradients
#
# What this shows: the explainers of the earlier tutorials on a model of the size people
# actually explain — torchvision's **ResNet-18** (11.7 M parameters) on **224 x 224 RGB
# photographs** (the ones bundled with scikit-image: no download) — with the 1,000 ImageNet
# class names. Three methods side by side on the same images and the same top-3 classes:
#
# - **Partition** (hierarchical Owen values) with the `blur(128,128)` masker that shap users
#   know from its ImageNet examples;
# - **DeepSHAP** (DeepLIFT averaged over a background), whose attributions of each output add
#   up to the output minus its mean over the background — checked below, and xaiwidgets warns
#   when they do not;
# - **integrated gradients** from a black image.
#
# Weights: xaiwidgets never downloads anything. When torchvision's ImageNet weights for
# ResNet-18 are already in your torch hub cache, this notebook uses them and the labels mean
# something. When they are not (as on the machines that run our tests), it says so and runs on
# **random weights**: every number is still exact for that network, the class names are then
# just names, and the pictures show what each method does, not what a trained network sees.
#
# Seed workflows: the `image_plot` pictures of seeds `001`/`002` (top-k classes per image, a
# shared colour bar), at ImageNet size.

# %%
import time
from pathlib import Path

import numpy as np
import skimage.data
import skimage.transform
import torch
import torchvision
from torch import nn

import xaiwidgets
from xaiwidgets.explainers import DeepExplainer, IntegratedGradients, PartitionExplainer

print("torch", torch.__version__, "| torchvision", torchvision.__version__)
torch.manual_seed(0)

# %% [markdown]
# ## The photographs
# Four of scikit-image's colour photographs, resized to 224 x 224, as floats in 0..1,
# `(n, h, w, c)`. (A uint8 array or a torch `(n, 3, h, w)` tensor would be accepted as well.)

# %%
names = ["astronaut", "coffee", "chelsea", "rocket"]
photos = np.stack(
    [
        skimage.transform.resize(getattr(skimage.data, name)(), (224, 224), anti_aliasing=True)
        for name in names
    ]
).astype(np.float32)
print(photos.shape, photos.dtype, float(photos.min()), float(photos.max()))

# %% [markdown]
# ## The network
# torchvision's ResNet-18 definition. The ImageNet normalisation is a layer in front of it, so
# the explainers see (and attribute to) the photographs' own 0..1 pixels. The weights are
# loaded from the torch hub cache when they are there; nothing is fetched.

# %%
weights_enum = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
class_names = list(weights_enum.meta["categories"])  # the 1,000 ImageNet names, in the package
cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights_enum.url).name

resnet = torchvision.models.resnet18(weights=None)
if cached.exists():
    resnet.load_state_dict(torch.load(cached, map_location="cpu"))
    print("pretrained ImageNet weights from", cached)
else:
    print(
        "No cached ImageNet weights (looked for", cached, ") -- running on RANDOM weights.\n"
        "The explanations are exact for this random network; the class names are not "
        "meaningful predictions."
    )


class ImageNetNormalize(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


model = nn.Sequential(ImageNetNormalize(), resnet).eval()

# %% [markdown]
# ## Partition with `blur(128,128)`
# Owen values over a hierarchy of image regions, the hidden regions blurred with a 128-pixel
# kernel. 300 model evaluations per image, the three most probable classes of each photograph.

# %%
partition = PartitionExplainer(model, "blur(128,128)", max_evals=300, class_names=class_names,
                               batch_size=64)
t0 = time.perf_counter()
partition_expl = partition(photos, top_k=3)
print(f"Partition: {time.perf_counter() - t0:.1f} s for {len(photos)} photographs")
partition_expl

# %% [markdown]
# ## DeepSHAP
# The background: each photograph heavily blurred (a common, data-free reference for natural
# images). Attributions of each output sum to `f(x) - mean f(background)`: the largest error
# below is float32 rounding. xaiwidgets measures this after every call and warns, naming the
# layer, when a network's layers break it.

# %%
import cv2  # noqa: E402  (OpenCV comes with xaiwidgets)

background = np.stack([cv2.GaussianBlur(p, (0, 0), 24) for p in photos])
deep = DeepExplainer(model, background, class_names=class_names, batch_size=32)
t0 = time.perf_counter()
deep_expl = deep(photos, top_k=3)
print(f"DeepSHAP: {time.perf_counter() - t0:.1f} s")
fx = deep_expl.predictions[np.arange(len(photos))[:, None], deep_expl.output_indices]
sums = deep_expl.values.reshape(len(photos), -1, 3).sum(axis=1)
relative = np.abs(fx - deep_expl.base_values - sums).max() / np.abs(fx - deep_expl.base_values).max()
print(f"completeness: largest relative error {relative:.1e}")
deep_expl

# %% [markdown]
# ## Integrated gradients
# From a black image, 32 intervals (trapezoid rule), for the same classes Partition chose.

# %%
integrated = IntegratedGradients(model, baseline=0.0, steps=32, class_names=class_names,
                                 batch_size=32)
t0 = time.perf_counter()
ig_expl = integrated(photos, outputs=partition_expl.output_indices)
print(f"integrated gradients: {time.perf_counter() - t0:.1f} s")
ig_expl

# %% [markdown]
# ## Side by side
# The most probable class of each photograph, one column per method, each row on its own
# colour scale (the three methods measure different things: a blurred-out region's effect, a
# difference from the background, a path integral from black).

# %%
methods = ["Partition blur", "DeepSHAP", "integrated gradients"]
top1 = [e.values[..., 0].sum(axis=3) for e in (partition_expl, deep_expl, ig_expl)]
top_class = partition_expl.output_indices[:, 0]
xaiwidgets.AttributionGrid(
    images=photos,
    values=np.stack(top1, axis=-1),  # (4, 224, 224, 3): one map per method
    output_labels=[[f"{m}: {class_names[c]}" for m in methods] for c in top_class],
    row_titles=names,
    scale_mode="row",
    title="top class, three methods",
)

# %% [markdown]
# How alike are the three maps, per photograph? (On random weights they mostly disagree: there
# is no object for them to agree on.)

# %%
for i, name in enumerate(names):
    p, d, g = (m[i].ravel() for m in top1)
    print(f"{name:10s} Partition~DeepSHAP {np.corrcoef(p, d)[0, 1]:+.2f}  "
          f"Partition~IG {np.corrcoef(p, g)[0, 1]:+.2f}  DeepSHAP~IG {np.corrcoef(d, g)[0, 1]:+.2f}")
