"""The references' side of torch DeepLIFT, evaluated once per chunk of references at its own
rows and tiled to the pair rows of a pass (:mod:`xaiwidgets.backends._deeplift_torch_refs`):
passes of many images give what passes of one image give (where the reference side is the
pair graph's own), including on a model whose batch axis is merged inside another axis (where
the tiling does not hold and the references are evaluated tiled); and the rescale rule's
derivative fallback (:func:`~xaiwidgets.backends._deeplift_torch_apply.rescale`) gives
``safe_div``'s values whether few, many or all elements need it.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from tests.backends.test_deeplift_torch_layers import CASES, N_REF, _data, _relative_gap  # noqa: E402
from xaiwidgets.backends import _deeplift_rules as rules  # noqa: E402
from xaiwidgets.backends import wrap  # noqa: E402
from xaiwidgets.backends._deeplift_torch import deeplift_torch  # noqa: E402
from xaiwidgets.backends._deeplift_torch_apply import derivative, rescale  # noqa: E402
from xaiwidgets.backends._deeplift_torch_autograd import OPS  # noqa: E402
from xaiwidgets.backends._deeplift_torch_refs import split, tile  # noqa: E402


class BatchInner(nn.Module):
    """Tokens laid out sequence-major and flattened, ``(L n, c)``, through a nonlinearity:
    the batch axis sits inside the merged axis, so a reference value of ``R`` rows is not the
    image-major tiling of the pair rows' value."""

    def __init__(self):
        super().__init__()
        self.fc, self.head = nn.Linear(8, 8), nn.Linear(8, 5)

    def forward(self, x):
        n, c = x.shape[:2]
        t = x.flatten(2).permute(2, 0, 1)  # (L, n, c)
        flat = torch.tanh(self.fc(t.reshape(-1, c))) * t.reshape(-1, c)  # (L n, c)
        return self.head(flat.reshape(-1, n, c).mean(0))


def _spy(monkeypatch) -> list:
    from xaiwidgets.backends import _deeplift_torch

    seen: list = []
    real = _deeplift_torch.tiling_holds

    def spy(*args):
        seen.append((args[4], real(*args)))
        return seen[-1][1]

    monkeypatch.setattr(_deeplift_torch, "tiling_holds", spy)
    return seen


@pytest.mark.parametrize("case", sorted(CASES) + ["batch_inner"])
def test_passes_of_many_images_equal_passes_of_one(case, monkeypatch):
    """All images in one pass (the references' side tiled to 2 x 3 pair rows) against one
    image a pass (the references' side evaluated by the pass's own graph)."""
    torch.manual_seed(0)
    model = BatchInner() if case == "batch_inner" else CASES[case]()
    backend = wrap(model.eval())
    x, refs = _data()
    seen = _spy(monkeypatch)
    many = deeplift_torch(backend, x, refs, [0, 3], max_rows=len(x) * N_REF)
    assert [m for m, _ in seen] == [len(x)]  # one pass of both images, checked once
    one = deeplift_torch(backend, x, refs, [0, 3], max_rows=N_REF)
    # attention's batched kernels round differently at 6 and 3 rows (as before the tiling)
    np.testing.assert_allclose(many, one, rtol=1e-5, atol=1e-4 * np.abs(one).max())
    assert _relative_gap(backend, x, refs, many, [0, 3]) <= 1e-4
    if case == "batch_inner":
        assert not seen[0][1]  # the tiling does not hold: the references were tiled
    elif case in ("batch_norm", "residual", "squeeze_excite", "transformer_block"):
        assert seen[0][1]  # batch-major throughout: the tiling holds


def test_tile_and_split_lay_references_out_image_major():
    r = torch.arange(6.0).reshape(3, 2)  # 3 reference rows
    p = torch.zeros(6, 2)  # 2 images x 3 references
    np.testing.assert_array_equal(tile(r, p), np.concatenate([r, r]))
    a, b = split(p, r)
    assert a.shape == (2, 3, 2) and b.shape == (1, 3, 2)
    seq = torch.zeros(4, 6, 2)  # (L, 2 x 3, c): the batch on the second axis
    rs = torch.arange(24.0).reshape(4, 3, 2)
    np.testing.assert_array_equal(tile(rs, seq)[:, 3:], rs)
    with pytest.raises(ValueError):
        tile(rs, torch.zeros(8, 6, 2))  # two axes differ


@pytest.mark.parametrize("equal", [0.0, 0.01, 0.5, 1.0])
@pytest.mark.parametrize("pointwise", [True, False])
def test_rescale_takes_the_derivative_where_the_difference_vanishes(equal, pointwise):
    """``Δy / Δu`` with ``f'`` at the midpoint where ``|Δu| < 1e-6``, on a fraction ``equal``
    of the elements (none, few, many, all), for references broadcast over 2 images."""
    gen = torch.Generator().manual_seed(0)
    u_r = torch.randn(3, 4, 5, generator=gen)
    u_p = torch.randn(2, 3, 4, 5, generator=gen)
    same = torch.rand(2, 3, 4, 5, generator=gen) < equal
    u_p = torch.where(same, u_r.expand_as(u_p) + 1e-8 * same, u_p).reshape(6, 4, 5)
    f = torch.nn.functional.silu
    got = rescale(f, u_p, u_r, f(u_p), f(u_r), pointwise)
    t = tile(u_r, u_p)
    want = rules.safe_div(
        OPS, f(u_p) - f(t), u_p - t, rules.EPS_RESCALE, derivative(f, 0.5 * (u_p + t))
    )
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
