"""One explainer instance on two threads at once, with different settings: each result's
``params`` (and values) are those of its own call, and the model is left as it was.

Nothing of a call is kept on the explainer: what a call finds (the layer it resolved, the
evaluations it spent, its completeness error) is in its Explanation's ``params``, what it estimates per value (the
standard errors of expected gradients) in the Explanation itself."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from xaiwidgets.explainers import GradientExplainer, IntegratedGradients, PartitionExplainer


def _both(fn_a, fn_b):
    """Run ``fn_a`` and ``fn_b`` on two threads started together; their results."""
    results: dict[str, object] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(name, fn):
        try:
            start.wait(timeout=30)
            results[name] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=a) for a in (("a", fn_a), ("b", fn_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if errors:
        raise errors[0]
    return results["a"], results["b"]


def test_partition_two_budgets_at_once():
    w = np.random.default_rng(0).normal(size=(8 * 8 * 3, 4))

    def model(x):
        return np.asarray(x, np.float64).reshape(len(x), -1) @ w

    x = np.random.default_rng(1).random((2, 8, 8, 3), dtype=np.float32)
    ex = PartitionExplainer(model, "constant(0)", max_evals=200)
    alone_small, alone_large = ex(x, max_evals=40), ex(x, top_k=2)
    small, large = _both(lambda: ex(x, max_evals=40), lambda: ex(x, top_k=2))
    assert small.params["max_evals"] == 40 and large.params["max_evals"] == 200
    assert small.params["evaluations"] == alone_small.params["evaluations"]
    assert large.params["evaluations"] == alone_large.params["evaluations"]
    assert max(small.params["evaluations"]) <= 40 < min(large.params["evaluations"])
    np.testing.assert_array_equal(small.values, alone_small.values)
    np.testing.assert_array_equal(large.values, alone_large.values)
    assert ex.max_evals == 200 and not hasattr(ex, "last_evaluations")


def _meet(torch, barrier):
    """A torch layer that holds each forward pass until the other thread's is running too
    (``barrier`` of 2; an aborted barrier lets every pass through at once)."""

    class Meet(torch.nn.Module):
        def forward(self, h):
            try:
                barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
            return h

    return Meet()


def _torch_cnn(barrier):
    torch = pytest.importorskip("torch")
    nn = torch.nn

    torch.manual_seed(0)
    return nn.Sequential(
        _meet(torch, barrier),  # both threads' layer hooks are set before either reaches one
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1, stride=2),
        nn.ReLU(),
        _meet(torch, barrier),  # and both have passed the layers before either reads its record
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    ).train()


def test_gradcam_two_threads_on_one_torch_model():
    from xaiwidgets.explainers import GradCAM, HiResCAM

    barrier = threading.Barrier(2)
    net = _torch_cnn(barrier)
    x = np.random.default_rng(2).random((3, 12, 12, 3), dtype=np.float32)
    ex = GradCAM(net, "3")
    other = HiResCAM(net, net[1])
    barrier.abort()  # alone: no waiting
    alone_a, alone_b = ex(x, top_k=1), other(x, outputs=[3, 4])
    barrier.reset()
    a, b = _both(lambda: ex(x, top_k=1), lambda: other(x, outputs=[3, 4]))
    assert a.params["layer"] == "3" and b.params["layer"] == "1"
    assert a.values.shape == (3, 12, 12, 1, 1) and b.values.shape == (3, 12, 12, 1, 2)
    np.testing.assert_allclose(a.values, alone_a.values, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b.values, alone_b.values, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(a.output_indices, alone_a.output_indices)
    # the same explainer on two threads, different outputs
    barrier.reset()
    c, d = _both(lambda: other(x, outputs=[0]), lambda: other(x[::-1], outputs=[1, 2]))
    barrier.abort()
    np.testing.assert_allclose(c.values, other(x, outputs=[0]).values, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        d.values, other(x[::-1], outputs=[1, 2]).values, rtol=1e-5, atol=1e-7
    )
    assert np.abs(c.values).max() > 0 and np.abs(d.values).max() > 0
    # the model as it was: train mode, trainable, no hooks left
    assert net.training and all(m.training for m in net.modules())
    assert all(p.requires_grad for p in net.parameters())
    assert sum(len(m._forward_hooks) for m in net.modules()) == 0


def test_integrated_gradients_diagnostics_are_per_call():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 3, 3), torch.nn.Tanh())
    x = np.random.default_rng(3).random((2, 4, 4, 3), dtype=np.float32)
    ig = IntegratedGradients(net, steps=4)
    a, b = _both(lambda: ig(x, outputs=[0]), lambda: ig(2 * x, outputs=[1, 2]))
    for e in (a, b):
        fx = np.take_along_axis(e.predictions, e.output_indices, axis=1)
        gap = fx - e.base_values - e.values.sum(axis=(1, 2, 3))
        np.testing.assert_allclose(
            e.params["max_completeness_error"], np.abs(gap).max(), rtol=1e-3, atol=1e-7
        )
    assert not hasattr(ig, "completeness_error_")


def test_expected_gradients_standard_errors_are_per_call():
    torch = pytest.importorskip("torch")
    barrier = threading.Barrier(2)

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        _meet(torch, barrier), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 3, 3), torch.nn.Tanh()
    )
    rng = np.random.default_rng(6)
    bg = rng.random((6, 4, 4, 3), dtype=np.float32)
    x = rng.random((2, 4, 4, 3), dtype=np.float32)
    eg = GradientExplainer(net, bg, nsamples=8, tolerance=10.0)
    barrier.abort()  # alone: no waiting
    alone_a, alone_b = eg(x, outputs=[0]), eg(3 * x[:1], outputs=[1, 2])
    barrier.reset()
    a, b = _both(lambda: eg(x, outputs=[0]), lambda: eg(3 * x[:1], outputs=[1, 2]))
    barrier.abort()
    assert a.standard_errors.shape == (2, 4, 4, 3, 1)
    assert b.standard_errors.shape == (1, 4, 4, 3, 2)
    for e, alone in ((a, alone_a), (b, alone_b)):
        np.testing.assert_allclose(e.values, alone.values, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(e.standard_errors, alone.standard_errors, rtol=1e-5, atol=1e-7)
        assert e.params["max_standard_error"] == pytest.approx(e.standard_errors.max())
    assert not np.allclose(a.standard_errors.max(), b.standard_errors.max())
    assert not hasattr(eg, "standard_errors_")


def test_keras_layer_wrappers_are_shared_by_threads_and_restored():
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    from xaiwidgets.explainers import GradCAM

    keras.utils.set_random_seed(0)
    inp = keras.Input((10, 10, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(3, name="head")(h))
    x = np.random.default_rng(4).random((2, 10, 10, 3), dtype=np.float32)
    ex = GradCAM(model, "conv")
    alone_a, alone_b = ex(x, outputs=[0]), ex(x[::-1], outputs=[1, 2])
    for _ in range(3):
        a, b = _both(lambda: ex(x, outputs=[0]), lambda: ex(x[::-1], outputs=[1, 2]))
        np.testing.assert_allclose(a.values, alone_a.values, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(b.values, alone_b.values, rtol=1e-5, atol=1e-7)
        assert a.params["layer"] == b.params["layer"] == "conv"
    assert "call" not in vars(model.get_layer("conv"))
