"""A faster input gradient for the thin first convolution of image models (TensorFlow, CPU).

The TensorFlow counterpart of :mod:`._torch_conv_grad`: the input gradient of a stride-1
``Conv2D`` with 1-3 input channels and a small kernel, ``Conv2DBackpropInput`` in TensorFlow,
takes about twice as long as its forward pass on CPU. As a sum of shifted products it costs
less (measured: 3x3 kernels 40% less, 5x5 kernels more, hence :data:`MAX_KERNEL_AREA`):

    dL/dx = crop( sum_{i,j} shift_{i,j}( G @ W[i, j]^T ) )

with ``G`` ``(n, h_out, w_out, c_out)``, ``W[i, j]`` the ``(c_in, c_out)`` kernel tap at offset
``(i, j)``, ``shift_{i,j}`` padding by ``i`` rows and ``j`` columns in front, and ``crop``
removing the convolution's own padding. Only the input gradient is formed (the filter gets
``None``): DeepLIFT differentiates with respect to the images only.

:func:`conv2d_input_grad` is registered as the gradient ``XaiwidgetsConv2D``; the DeepLIFT
graph maps ``Conv2D`` to it, and it falls back to ``Conv2DBackpropInput`` for every other
convolution.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

#: Input channels and kernel taps up to which the shifted-product gradient is used.
MAX_IN_CHANNELS = 3
MAX_KERNEL_AREA = 9
GRADIENT_NAME = "XaiwidgetsConv2D"


def _thin(op: Any) -> bool:
    x, w = op.inputs[0], op.inputs[1]
    return (
        op.get_attr("data_format") == b"NHWC"
        and list(op.get_attr("strides")) == [1, 1, 1, 1]
        and list(op.get_attr("dilations")) == [1, 1, 1, 1]
        and op.get_attr("padding") in (b"VALID", b"SAME")
        and x.shape.rank == 4
        and None not in x.shape[1:]
        and w.shape[2] <= MAX_IN_CHANNELS
        and w.shape[0] * w.shape[1] <= MAX_KERNEL_AREA
    )


def conv2d_input_grad(op: Any, grad: Any) -> list:
    """Gradient of ``Conv2D`` with respect to its input (and ``None`` for the filter)."""
    x, w = op.inputs[0], op.inputs[1]
    if not _thin(op):
        attrs = {k: op.get_attr(k) for k in ("strides", "padding", "data_format", "dilations")}
        if attrs["padding"] == b"EXPLICIT":
            attrs["explicit_paddings"] = op.get_attr("explicit_paddings")
        dx = tf.raw_ops.Conv2DBackpropInput(
            input_sizes=tf.shape(x), filter=w, out_backprop=grad, **attrs
        )
        return [dx, None]
    kh, kw = int(w.shape[0]), int(w.shape[1])
    h, wd = int(x.shape[1]), int(x.shape[2])
    h_out, w_out = int(grad.shape[1]), int(grad.shape[2])
    top, left = (kh - 1) // 2, (kw - 1) // 2  # TensorFlow's SAME puts the odd pixel after
    if op.get_attr("padding") == b"VALID":
        top = left = 0
    taps = tf.einsum("nhwo,ijco->ijnhwc", grad, w)
    rows, cols = h_out - 1 + kh, w_out - 1 + kw  # the padded input's extent
    dx = None
    for i in range(kh):
        for j in range(kw):
            part = tf.pad(
                taps[i, j], [[0, 0], [i, rows - h_out - i], [j, cols - w_out - j], [0, 0]]
            )
            dx = part if dx is None else dx + part
    return [dx[:, top : top + h, left : left + wd], None]


try:
    tf.RegisterGradient(GRADIENT_NAME)(conv2d_input_grad)
except KeyError:  # already registered (module reloaded)
    pass
