"""The thin-convolution input gradient (``_torch_conv_grad``) equals autograd's, and only
qualifying ``conv2d`` calls take it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.backends import models

torch = pytest.importorskip("torch")
F = torch.nn.functional

from xaiwidgets.backends._torch_conv_grad import ThinConvInputGrad, _ThinConv  # noqa: E402
from xaiwidgets.backends.torch_backend import TorchBackend  # noqa: E402


def _input_grad(x, w, b, mode: bool, **kw):
    xg = x.clone().requires_grad_(True)
    if mode:
        with ThinConvInputGrad():
            y = F.conv2d(xg, w, b, **kw)
    else:
        y = F.conv2d(xg, w, b, **kw)
    cot = torch.from_numpy(np.random.default_rng(1).standard_normal(tuple(y.shape))).float()
    (g,) = torch.autograd.grad(y, xg, cot)
    return y.detach(), g, y.grad_fn


@pytest.mark.parametrize(
    "c_in, kernel, kw",
    [
        (1, (5, 5), {}),
        (3, (3, 3), {"padding": 1}),
        (1, (2, 2), {"stride": 2}),
        (1, (3, 2), {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2)}),
        (2, (3, 3), {"stride": 3, "padding": 2, "dilation": 2}),  # uncovered trailing rows
        (1, (3, 3), {"padding": "valid"}),
    ],
)
def test_input_gradient_equals_autograd(c_in, kernel, kw):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((3, c_in, 13, 11))).float()
    w = torch.from_numpy(rng.standard_normal((6, c_in) + kernel)).float()
    b = torch.from_numpy(rng.standard_normal(6)).float()
    y0, g0, _ = _input_grad(x, w, b, False, **kw)
    y1, g1, fn = _input_grad(x, w, b, True, **kw)
    padding = kw.get("padding", 0)
    assert (fn.name() == "_ThinConvBackward") == (not isinstance(padding, str))
    torch.testing.assert_close(y1, y0, rtol=0, atol=0)
    torch.testing.assert_close(g1, g0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "case",
    ["weight_needs_grad", "groups", "wide_input", "same_padding", "input_needs_no_grad"],
)
def test_other_calls_run_untouched(case):
    x = torch.randn(2, 4 if case in ("wide_input", "groups") else 1, 9, 9)
    w = torch.randn(4, 1 if case == "groups" else x.shape[1], 3, 3)
    kw = {"groups": 4} if case == "groups" else {}
    if case == "same_padding":
        kw["padding"] = "same"
    w.requires_grad_(case == "weight_needs_grad")
    x.requires_grad_(case != "input_needs_no_grad")
    with ThinConvInputGrad():
        y = F.conv2d(x, w, None, **kw)
    assert y.grad_fn is None or y.grad_fn.name() != "_ThinConvBackward"
    torch.testing.assert_close(y, F.conv2d(x, w, None, **kw))


def test_backend_gradients_take_it_and_match_plain_autograd(monkeypatch):
    calls = []
    backward = _ThinConv.backward
    monkeypatch.setattr(
        _ThinConv, "backward", staticmethod(lambda *a: calls.append(1) or backward(*a))
    )
    model = models.torch_cnn()  # Conv2d(1, 10, 5) first: qualifies inside eval_mode
    x = models.random_images(3, seed=2)
    b = TorchBackend(model)
    g = b.grad(x, [0, 4])
    xt = torch.from_numpy(np.moveaxis(x, -1, 1).copy()).requires_grad_(True)
    out = model.eval()(xt)
    for j, k in enumerate((0, 4)):
        (ref,) = torch.autograd.grad(out[:, k].sum(), xt, retain_graph=True)
        np.testing.assert_allclose(g[..., j], np.moveaxis(ref.numpy(), 1, -1), atol=1e-6)
    assert len(calls) == 2  # one backward pass per requested output
    assert all(p.requires_grad for p in model.parameters())  # eval_mode restored them
