"""TorchBackend beyond the contract: eval mode forced and restored, no_grad forward, device,
layout, dtype, output forms, autograd Functions without functorch support."""

from __future__ import annotations

import numpy as np
import pytest

from tests.backends import models

torch = pytest.importorskip("torch")
nn = torch.nn

from xaiwidgets.backends import wrap  # noqa: E402
from xaiwidgets.backends.torch_backend import TorchBackend  # noqa: E402


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return models.random_images(4, seed=7)


def _nchw(x: np.ndarray):
    return torch.from_numpy(np.moveaxis(x, -1, 1).copy())


def test_wrap_picks_torch_and_names_its_attributes(torch_case):
    b = wrap(torch_case.backend.model)
    assert isinstance(b, TorchBackend)
    assert b.channels_first is True and b.device == torch.device("cpu")
    t = b.to_framework(models.random_images(2))
    assert t.shape == (2, 1, 28, 28) and t.dtype == torch.float32 and t.is_contiguous()
    np.testing.assert_array_equal(b.from_framework_grad(t), models.random_images(2))


def test_eval_mode_is_forced_and_every_flag_restored(x):
    model = models.torch_cnn()
    model.train()
    model.fc_layers.eval()  # a mixed state must come back exactly
    next(model.parameters()).requires_grad_(False)  # and each parameter's requires_grad
    before = {name: m.training for name, m in model.named_modules()}
    needs = {name: p.requires_grad for name, p in model.named_parameters()}
    b = TorchBackend(model)
    p1, p2 = b.predict(x), b.predict(x)
    np.testing.assert_array_equal(p1, p2)  # Dropout off
    b.grad(x, [0, 1])
    b.vjp(x, np.ones((4, 10), np.float32))
    assert {name: m.training for name, m in model.named_modules()} == before
    assert {name: p.requires_grad for name, p in model.named_parameters()} == needs
    assert sum(needs.values()) == len(needs) - 1
    with torch.no_grad():
        expected = models.torch_cnn().eval()(_nchw(x)).numpy()
    np.testing.assert_allclose(p1, expected, rtol=1e-5, atol=1e-7)


def test_mode_is_restored_when_the_model_raises():
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout()

        def forward(self, x):
            assert not self.training
            raise RuntimeError("boom")

    model = Boom().train()
    with pytest.raises(RuntimeError, match="boom"):
        TorchBackend(model).predict(np.zeros((2, 4, 4, 1), np.float32))
    assert model.training and model.drop.training


def test_forward_runs_without_autograd_and_gradients_leave_params_alone(x):
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(784, 10)

        def forward(self, x):
            seen.append(torch.is_grad_enabled())
            return self.lin(x.reshape(len(x), -1))

    model = Spy()
    b = TorchBackend(model)
    b.predict(x)
    assert seen == [False]
    b.grad(x, [0, 1])
    assert seen[-1] is True and model.lin.weight.grad is None


def test_device_is_the_models_and_can_be_chosen(x):
    model = models.torch_cnn()
    b = TorchBackend(model, device="cpu")
    assert b.device == next(model.parameters()).device
    assert b.to_framework(x).device == b.device
    if torch.cuda.is_available():  # exercised on GPU machines
        gpu = TorchBackend(models.torch_cnn().cuda())
        assert gpu.device.type == "cuda" and gpu.to_framework(x).is_cuda
        np.testing.assert_allclose(gpu.predict(x), b.predict(x), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(gpu.grad(x, [0]), b.grad(x, [0]), rtol=1e-3, atol=1e-6)


def test_channels_last_models_with_channels_first_false(x):
    nchw = models.torch_cnn()

    class NHWC(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nchw

        def forward(self, x):
            return self.inner(x.permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format))

    b = TorchBackend(NHWC(), channels_first=False)
    ref = TorchBackend(nchw)
    np.testing.assert_allclose(b.predict(x), ref.predict(x), rtol=1e-6)
    np.testing.assert_allclose(b.grad(x, [2, 5]), ref.grad(x, [2, 5]), rtol=1e-5, atol=1e-8)


def test_double_models_and_tuple_dict_outputs(x):
    model = models.torch_cnn()
    ref = TorchBackend(model)
    b64 = TorchBackend(models.torch_cnn().double())
    assert b64.dtype == torch.float64 and b64.to_framework(x).dtype == torch.float64
    np.testing.assert_allclose(b64.predict(x), ref.predict(x), rtol=1e-5, atol=1e-7)
    assert b64.grad(x, [0]).dtype == np.float32

    class Tuple(nn.Module):
        def forward(self, x):
            return model(x), "aux"

    class Dict(nn.Module):
        def forward(self, x):
            return {"logits": model(x)}

    for wrapper in (Tuple(), Dict()):
        np.testing.assert_allclose(TorchBackend(wrapper).predict(x), ref.predict(x), rtol=1e-6)

    class Bad(nn.Module):
        def forward(self, x):
            return "nope"

    with pytest.raises(TypeError, match="expected a tensor"):
        TorchBackend(Bad()).predict(x)


def test_grad_takes_functions_without_functorch_support(x):
    class OldStyleSquare(torch.autograd.Function):  # no setup_context / vmap rule
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return z * z

        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            return 2 * z * g

    class Legacy(nn.Module):
        def forward(self, z):
            return OldStyleSquare.apply(z.reshape(len(z), -1)[:, :10])

    g = TorchBackend(Legacy()).grad(x, [0, 1, 2])
    flat = x.reshape(4, -1)
    for j in range(3):
        np.testing.assert_allclose(g[..., j].reshape(4, -1)[:, j], 2 * flat[:, j], rtol=1e-6)


def test_native_vjp_and_a_plain_torch_function(x):
    b = wrap(lambda t: t.reshape(len(t), -1)[:, :10] * 2.0, framework="torch")
    assert isinstance(b, TorchBackend)
    out, g = b.vjp(x, np.ones((4, 10), np.float32))
    np.testing.assert_allclose(out, 2 * x.reshape(4, -1)[:, :10])
    assert g.reshape(4, -1)[:, :10].min() == 2.0 and g.reshape(4, -1)[:, 10:].max() == 0.0
    out_t, g_t = b.native_vjp(b.to_framework(x), torch.ones(4, 10))
    np.testing.assert_allclose(b.from_framework_grad(g_t), g)
    with pytest.raises(ValueError, match="cotangent"):
        b.native_vjp(b.to_framework(x), torch.ones(4, 3))


def test_more_outputs_than_one_group(x):
    w = torch.from_numpy(np.random.default_rng(2).normal(size=(784, 40)).astype(np.float32))
    b = wrap(lambda z: z.reshape(len(z), -1) @ w, framework="torch")
    outputs = np.arange(39, 19, -1)
    g = b.grad(x, outputs)
    np.testing.assert_allclose(g[3].reshape(784, 20), w.numpy()[:, outputs], rtol=1e-6)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_eval_mode_reaches_torchscript_modules(x):
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(784, 10))
    model = torch.jit.script(net.train())
    b = TorchBackend(model)
    np.testing.assert_array_equal(b.predict(x), b.predict(x))  # Dropout off inside
    assert model.training and all(m.training for m in model.modules())


def test_predict_in_layout_takes_images_in_the_models_layout(x):
    from xaiwidgets.backends import InputLayout, NonFiniteOutputError

    b = TorchBackend(models.torch_cnn(), batch_size=3)  # two model calls for 4 images
    assert isinstance(b, InputLayout) and b.input_layout == "nchw"
    nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(b.predict_in_layout(nchw), b.predict(x))
    last = TorchBackend(lambda t: t.reshape(len(t), -1)[:, :10], channels_first=False)
    assert last.input_layout == "nhwc"
    np.testing.assert_array_equal(last.predict_in_layout(x), x.reshape(4, -1)[:, :10])
    with pytest.raises(ValueError, match="batch of images in nchw"):
        b.predict_in_layout(nchw[0])
    bad = TorchBackend(lambda t: t.reshape(len(t), -1)[:, :3] / t.reshape(len(t), -1)[:, :3])
    zeros = np.zeros_like(nchw)
    zeros[1:] = 1.0
    with pytest.raises(NonFiniteOutputError) as info:
        bad.predict_in_layout(zeros)
    assert list(info.value.rows) == [0]
