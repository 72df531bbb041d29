"""Figures of the data audit: two images side by side (a near-duplicate or duplicate pair)."""

from __future__ import annotations

import numpy as np


def side_by_side(first: np.ndarray, second: np.ndarray, gap: int = 6, background: int = 255) -> np.ndarray:
    """Two grayscale ``(H, W)`` uint8 images in one ``(max H, W1 + gap + W2)`` uint8 array, top-aligned,
    with a ``gap`` of ``background`` between them."""
    first, second = np.asarray(first, np.uint8), np.asarray(second, np.uint8)
    height = max(first.shape[0], second.shape[0])
    canvas = np.full((height, first.shape[1] + gap + second.shape[1]), background, np.uint8)
    canvas[: first.shape[0], : first.shape[1]] = first
    canvas[: second.shape[0], first.shape[1] + gap:] = second
    return canvas
