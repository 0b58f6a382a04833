"""DeepLIFT over the torch aten graph, layer by layer: every modern layer alone is complete.

Each model takes images ``(n, c, h, w)`` (NHWC at the public API), runs one layer (or one
block) and a linear head. On random images and random references, with no warning allowed
(no op crossed without a rule), ``sum(phi) = f(x) - mean_r f(r)`` to 1e-4 relative in float32
(the guarantee is 1e-3; measured 1e-7..3e-6, where the former torch path was off by 0.03-3.9
on attention, norms and gates). An op without a rule is named with its source line.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from xaiwidgets.backends import wrap  # noqa: E402
from xaiwidgets.backends._deeplift_torch import deeplift_torch  # noqa: E402

C, H, W = 8, 4, 4  # channels, height, width: 16 tokens of 8 features
N_X, N_REF = 2, 3


class Tokens(nn.Module):
    """``(n, c, h, w)`` -> tokens ``(n, h*w, c)`` -> ``body`` -> mean over tokens -> 5 logits."""

    def __init__(self, body: nn.Module, seq_first: bool = False):
        super().__init__()
        self.body, self.seq_first = body, seq_first
        self.head = nn.Linear(C, 5)

    def forward(self, x):
        t = x.flatten(2).transpose(1, 2)
        if self.seq_first:
            t = t.transpose(0, 1)
        t = self.body(t)
        if self.seq_first:
            t = t.transpose(0, 1)
        return self.head(t.mean(1))


class Image(nn.Module):
    """``(n, c, h, w)`` -> ``body`` -> global average -> 5 logits."""

    def __init__(self, body: nn.Module, channels: int = C):
        super().__init__()
        self.body, self.head = body, nn.Linear(channels, 5)

    def forward(self, x):
        return self.head(self.body(x).mean((2, 3)))


class SelfAttention(nn.Module):
    def __init__(self, batch_first: bool = True):
        super().__init__()
        self.attn = nn.MultiheadAttention(C, 2, batch_first=batch_first)

    def forward(self, t):
        return self.attn(t, t, t, need_weights=False)[0]


class SDPA(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(C, 3 * C)

    def forward(self, t):
        n, s, _ = t.shape
        q, k, v = self.qkv(t).reshape(n, s, 3, 2, C // 2).permute(2, 0, 3, 1, 4)
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, s, C)


class ExplicitAttention(nn.Module):
    """softmax(Q Kᵀ / sqrt(d)) V written out, as timm's non-fused path does."""

    def __init__(self):
        super().__init__()
        self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)

    def forward(self, t):
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C))
        return self.proj(attn.softmax(dim=-1) @ v)


class ManualSoftmaxAttention(nn.Module):
    """exp(s - max s) / sum: amax, exp and a division of two varying tensors."""

    def forward(self, t):
        s = t @ t.transpose(-2, -1) * 0.3
        e = torch.exp(s - s.amax(-1, keepdim=True))
        return (e / e.sum(-1, keepdim=True)) @ t


class ClassTokenAttention(nn.Module):
    """A constant class token attends to the patches (ViT): its own score is the same for
    image and reference while the row maximum moves (the softmax rule's exact shift)."""

    def __init__(self):
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, C) * 3.0)
        self.attn = SelfAttention()

    def forward(self, t):
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], dim=1)
        return self.attn(t)[:, :1]


class SqueezeExcite(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(C, C, 3, padding=1)
        self.fc1, self.fc2 = nn.Conv2d(C, 4, 1), nn.Conv2d(4, C, 1)

    def forward(self, x):
        x = self.conv(x)
        g = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * g


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(C, C, 3, padding=1), nn.BatchNorm2d(C)
        self.c2, self.b2 = nn.Conv2d(C, C, 3, padding=1), nn.BatchNorm2d(C)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.b1(self.c1(x)))
        out = self.b2(self.c2(out))
        out += x
        return self.relu(out)


class TransformerBlock(nn.Module):
    """Pre-norm ViT block: LayerNorm, attention, residual, LayerNorm, GELU MLP, residual."""

    def __init__(self):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.attn = SDPA()
        self.mlp = nn.Sequential(nn.Linear(C, 2 * C), nn.GELU(), nn.Linear(2 * C, C))

    def forward(self, t):
        t = t + self.attn(self.n1(t))
        return t + self.mlp(self.n2(t))


def _with_batch_norm_stats(model: nn.Module) -> nn.Module:
    """Random running statistics so eval-mode batch norm is not the identity."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            nn.init.normal_(m.weight, 1.0, 0.2)
            nn.init.normal_(m.bias, 0.0, 0.2)
    return model


def _norm_affine(model: nn.Module) -> nn.Module:
    """Random affine parameters of the norm layers (default init is the identity)."""
    for m in model.modules():
        if isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.3)
            nn.init.normal_(m.bias, 0.0, 0.3)
    return model


CASES = {
    "layer_norm": lambda: Tokens(_norm_affine(nn.LayerNorm(C))),
    "multihead_attention": lambda: Tokens(SelfAttention()),
    "multihead_attention_seq_first": lambda: Tokens(SelfAttention(False), seq_first=True),
    "sdpa": lambda: Tokens(SDPA()),
    "class_token_attention": lambda: Tokens(ClassTokenAttention()),
    "explicit_attention": lambda: Tokens(ExplicitAttention()),
    "manual_softmax_attention": lambda: Tokens(ManualSoftmaxAttention()),
    "transformer_block": lambda: Tokens(_norm_affine(TransformerBlock())),
    "squeeze_excite": lambda: Image(SqueezeExcite()),
    "gelu": lambda: Image(nn.Sequential(nn.Conv2d(C, C, 3, padding=1), nn.GELU())),
    "gelu_tanh": lambda: Image(nn.Sequential(nn.Conv2d(C, C, 1), nn.GELU("tanh"))),
    "silu": lambda: Image(nn.Sequential(nn.Conv2d(C, C, 3, padding=1), nn.SiLU())),
    "hardswish": lambda: Image(nn.Sequential(nn.Conv2d(C, C, 1), nn.Hardswish(), nn.Hardsigmoid())),
    "mish_elu_softplus": lambda: Image(
        nn.Sequential(nn.Conv2d(C, C, 1), nn.Mish(), nn.Conv2d(C, C, 1), nn.ELU(), nn.Softplus())
    ),
    "batch_norm": lambda: Image(
        _with_batch_norm_stats(nn.Sequential(nn.Conv2d(C, C, 3), nn.BatchNorm2d(C), nn.ReLU()))
    ),
    "group_norm": lambda: Image(
        _norm_affine(nn.Sequential(nn.Conv2d(C, C, 3, padding=1), nn.GroupNorm(2, C), nn.ReLU()))
    ),
    "residual": lambda: Image(_with_batch_norm_stats(Residual())),
    "max_pool_relu6": lambda: Image(
        nn.Sequential(nn.Conv2d(C, C, 1), nn.ReLU6(), nn.MaxPool2d(3, 1, padding=1))
    ),
}


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_X, H, W, C)).astype(np.float32)
    refs = rng.normal(size=(N_REF, H, W, C)).astype(np.float32)
    return x, refs


def _predict(backend, x):
    """Model outputs of NHWC ``x`` (``backend.predict`` would guess the layout of (n,4,4,8))."""
    with backend.eval_mode(), torch.no_grad():
        return backend._predict_batch(x).astype(np.float64)


def _relative_gap(backend, x, refs, values, outputs):
    fx = _predict(backend, x)[:, outputs]
    base = _predict(backend, refs).mean(0)[outputs]
    gap = fx - base - values.reshape(len(x), -1, len(outputs)).sum(1)
    return float(np.abs(gap).max() / np.abs(fx - base).max())


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_is_complete(case):
    torch.manual_seed(0)
    backend = wrap(CASES[case]().eval())
    x, refs = _data()
    outputs = [0, 3]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no op crossed without a rule
        values = deeplift_torch(backend, x, refs, outputs)
    assert values.shape == x.shape + (2,)
    assert np.abs(values).max() > 0
    assert _relative_gap(backend, x, refs, values, outputs) <= 1e-4  # measured 1e-7..3e-6


def test_gate_split_is_shapley():
    """``a * b`` of two varying inputs: each factor gets half of both orders,
    ``φ_a = ½ Δa (b + b')``, exactly (one image, one reference)."""

    class Product(nn.Module):
        def forward(self, x):
            return (x[:, 0] * x[:, 1]).flatten(1).sum(1, keepdim=True)

    backend = wrap(Product().eval())
    rng = np.random.default_rng(3)
    x, ref = rng.normal(size=(2, 1, 2, 2, 2)).astype(np.float32)
    phi = deeplift_torch(backend, x, ref, [0])[0, ..., 0]
    a, b, a0, b0 = x[0, ..., 0], x[0, ..., 1], ref[0, ..., 0], ref[0, ..., 1]
    np.testing.assert_allclose(phi[..., 0], 0.5 * (a - a0) * (b + b0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(phi[..., 1], 0.5 * (a + a0) * (b - b0), rtol=1e-5, atol=1e-6)


def test_op_without_a_rule_is_named_with_its_source_line():
    class Cumulative(nn.Module):
        def forward(self, x):
            return torch.cumprod(x.flatten(1), dim=1)[:, -4:]

    backend = wrap(Cumulative().eval())
    x, refs = _data()
    with pytest.warns(UserWarning, match=r"aten\.cumprod .*test_deeplift_torch_layers\.py"):
        deeplift_torch(backend, x, refs, [0])
    found: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        deeplift_torch(backend, x, refs, [0], fallbacks=found)
    assert len(found) == 1 and found[0].startswith("aten.cumprod")


def test_graph_is_traced_once_per_shape():
    from xaiwidgets.backends import _deeplift_torch_graph as graph

    backend = wrap(CASES["silu"]().eval())
    x, refs = _data()
    deeplift_torch(backend, x, refs, [0])
    graphs = dict(graph.GRAPHS._graphs[backend])
    deeplift_torch(backend, x[::-1].copy(), refs, [1])
    assert dict(graph.GRAPHS._graphs[backend]) == graphs


def test_untraceable_model_falls_back_to_eager_rules_and_says_so():
    """Python that reads tensor values cannot be traced: the eager interception of activation
    functions takes over (complete on this model), and the report names the reason."""

    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(H * W * C, 4)

        def forward(self, x):
            h = self.fc(x.flatten(1))
            if float(h.abs().sum()) > 0:  # data-dependent control flow
                h = torch.tanh(h)
            return h

    torch.manual_seed(0)
    backend = wrap(DataDependent().eval())
    x, refs = _data()
    found: list = []
    with pytest.warns(UserWarning, match="'abs'"):  # the eager path names its own gaps
        values = deeplift_torch(backend, x, refs, [0, 2], fallbacks=found)
    assert len(found) == 1 and "not traceable" in found[0]
    assert _relative_gap(backend, x, refs, values, [0, 2]) <= 1e-4


def test_passes_are_planned_within_the_memory_budget(monkeypatch):
    """The backend plans the passes itself: with a budget that holds two pair rows, each pass
    has one image and at most two references (the references in equal chunks, their
    attributions the weighted mean), giving what one pass gives; ``progress`` is called before
    every pass, by the pair rows done, so it moves within one image."""
    from xaiwidgets.backends import _deeplift_passes

    monkeypatch.setattr(_deeplift_passes, "PASS_SECONDS", float("inf"))  # no shrinking by time
    torch.manual_seed(0)
    model = CASES["silu"]().eval()
    whole = wrap(model)
    x, refs = _data()
    one_pass = deeplift_torch(whole, x, refs, [0, 3])
    row = whole.row_bytes(x.shape[1:])
    small = wrap(model, memory_budget=2 * 2 * row)  # ROW_COPIES x row bytes x 2 rows
    seen: list = []
    values = small.deeplift(x, refs, [0, 3], progress=seen.append)
    np.testing.assert_allclose(values, one_pass, rtol=1e-5, atol=1e-6)
    # 2 images x 2 chunks of references (2 + 1), progress by the pair rows done (of 6) before
    # every pass, and before each of a pass's two backward passes (1/3 and 2/3 of its rows)
    passes = [(0, 2), (2, 1), (3, 2), (5, 1)]  # (rows done, rows of the pass)
    expected = [d + part * r for d, r in passes for part in (0, 1 / 3, 2 / 3)]
    np.testing.assert_allclose(seen, np.array(expected) / 6)


def test_progress_can_stop_the_passes():
    """``progress`` raising stops DeepLIFT before the next pass (how a cancel is seen)."""
    model = CASES["silu"]().eval()
    backend = wrap(model, memory_budget=1)  # one image and one reference a pass

    class Stop(Exception):
        pass

    calls: list = []

    def progress(fraction):
        calls.append(fraction)
        if len(calls) == 2:
            raise Stop

    x, refs = _data()
    with pytest.raises(Stop):
        backend.deeplift(x, refs, [0], progress=progress)
    assert len(calls) == 2


def test_slow_passes_shrink_and_agree(monkeypatch):
    """A pass slower than SLOW x PASS_SECONDS makes the next passes smaller (once): the rest
    of the references in smaller chunks, the result the same."""
    from xaiwidgets.backends import _deeplift_passes

    torch.manual_seed(0)
    model = CASES["silu"]().eval()
    x, refs = _data()
    refs = np.concatenate([refs] * 3)  # 9 references
    whole = deeplift_torch(wrap(model), x, refs, [0, 3], max_rows=100)  # one pass
    monkeypatch.setattr(_deeplift_passes, "unit_seconds", lambda *a: None)  # no estimate
    monkeypatch.setattr(_deeplift_passes, "PASS_SECONDS", 0.0)  # every pass is "slow"
    seen: list = []
    row = wrap(model).row_bytes(x.shape[1:])
    small = wrap(model, memory_budget=2 * 4 * row)  # 4 rows: 1 image x 3 references a pass
    values = deeplift_torch(small, x, refs, [0, 3], progress=seen.append)
    np.testing.assert_allclose(values, whole, rtol=1e-5, atol=1e-6)
    # the first pass (3 references), then one reference a pass: 1 + 6 + 9 passes (progress
    # also before each pass's two backward passes)
    starts = [0, 3 / 18] + [k / 18 for k in range(4, 18)]
    np.testing.assert_allclose(seen[::3], starts)
