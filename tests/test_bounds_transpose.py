"""Transposed convolutions of the back-substitution (into few channels by im2col and products, as a
matrix, or mkldnn's), checked as adjoints ``<lam, A x> = <A^T lam, x>`` and against ``conv_transpose2d``."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from shallowcert.bounds.affine import DENSE_MATRIX_ENTRIES, GEMM_CHANNELS, ConvMap

CASES = [(channels, size, kernel, stride, padding)
         for channels, size, kernel, stride, padding in itertools.product((1, 3), (7, 8, 11), (2, 3, 4, 6), (1, 2, 3),
                                                                           (0, 1, 2))
         if padding < kernel and (size + 2 * padding - kernel) >= 0]


@pytest.mark.parametrize("channels, size, kernel, stride, padding", CASES)
def test_the_transposed_convolution_into_few_channels_is_the_adjoint(channels: int, size: int, kernel: int, stride: int,
                                                            padding: int) -> None:
    assert channels <= GEMM_CHANNELS
    generator = torch.Generator().manual_seed(size * 100 + kernel * 10 + stride + padding)
    weight = torch.randn(5, channels, kernel, kernel, dtype=torch.float64, generator=generator)
    conv = ConvMap(weight, None, in_shape=(channels, size, size), stride=(stride, stride), padding=(padding, padding))
    lam = torch.randn(2, 3, *conv.out_shape, dtype=torch.float64, generator=generator)
    x = torch.randn(6, channels, size, size, dtype=torch.float64, generator=generator)
    transposed = conv.transpose(lam)
    assert transposed.shape == (2, 3, channels, size, size)
    left = (lam.reshape(6, -1) * conv.apply(x).reshape(6, -1)).sum()
    right = (transposed.reshape(6, -1) * x.reshape(6, -1)).sum()
    assert abs(float(left - right)) <= 1e-12 * (1 + abs(float(left)))


@pytest.mark.parametrize("size", [28, 29])  # 29: the last row and column are never read (output padding)
def test_the_input_layer_transpose_equals_conv_transpose2d_and_its_gradients(size: int) -> None:
    generator = torch.Generator().manual_seed(size)
    weight = torch.randn(16, 1, 4, 4, dtype=torch.float64, generator=generator, requires_grad=True)
    conv = ConvMap(weight, None, in_shape=(1, size, size), stride=(2, 2), padding=(1, 1))
    lam = torch.randn(7, *conv.out_shape, dtype=torch.float64, generator=generator, requires_grad=True)
    upstream = torch.randn(7, 1, size, size, dtype=torch.float64, generator=generator)
    mine = conv.transpose(lam)
    theirs = F.conv_transpose2d(lam, weight, stride=2, padding=1, output_padding=conv.output_padding)
    assert mine.shape == theirs.shape == (7, 1, size, size)
    assert torch.allclose(mine, theirs, atol=1e-12)
    mine_grads = torch.autograd.grad((mine * upstream).sum(), (lam, weight))
    their_grads = torch.autograd.grad((theirs * upstream).sum(), (lam, weight))
    for a, b in zip(mine_grads, their_grads):
        assert torch.allclose(a, b, atol=1e-11)


@pytest.mark.parametrize("in_shape, kernel, stride, padding", [((32, 3, 3), 4, 2, 1), ((8, 5, 5), 3, 1, 0)])
def test_a_small_convolution_transposes_as_its_matrix(in_shape: tuple[int, int, int], kernel: int, stride: int,
                                                      padding: int) -> None:
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(16, in_shape[0], kernel, kernel, dtype=torch.float64, generator=generator)
    conv = ConvMap(weight, None, in_shape=in_shape, stride=(stride, stride), padding=(padding, padding))
    size, outputs = in_shape[0] * in_shape[1] * in_shape[2], 16 * conv.out_shape[1] * conv.out_shape[2]
    assert size * outputs <= DENSE_MATRIX_ENTRIES < 64 * 9 * 16 * 14 * 14  # the product path, not wong-small's
    lam = torch.randn(2, 3, *conv.out_shape, dtype=torch.float64, generator=generator)
    expected = F.conv_transpose2d(lam.reshape(6, *conv.out_shape), weight, stride=stride, padding=padding,
                                  output_padding=conv.output_padding).reshape(2, 3, *in_shape)
    assert torch.allclose(conv.transpose(lam), expected, atol=1e-12)
