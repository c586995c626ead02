"""Block compressed sensing of whole images (as ReconNet / ISTA-Net report natural images).

An ``H x W`` image is padded (edge replication) to multiples of the block side ``B`` (33), cut
into ``B x B`` blocks, each block measured with the same ``Phi`` (``y_b = Phi vec(block_b)``),
reconstructed by a decoder trained on ``B x B`` patches, stitched back and cropped to ``H x W``.
Quality is measured on the whole image: ``PSNR = 10 log10(1 / mean((x - x_hat)^2))`` over all
``H W`` pixels, SSIM by scikit-image on the whole image (7 x 7 window, data range 1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import CSInputError


def image_to_blocks(img: np.ndarray, block: int) -> tuple[np.ndarray, tuple[int, int]]:
    """``(blocks (K, B*B), padded shape)``: row-major blocks of the edge-padded image."""
    img = np.asarray(img, dtype=np.float64)
    if img.ndim != 2 or block < 1:
        raise CSInputError(f"block CS needs a 2-D image and a block side >= 1, got {img.shape}, {block}")
    H, W = img.shape
    Hp, Wp = -(-H // block) * block, -(-W // block) * block
    pad = np.pad(img, ((0, Hp - H), (0, Wp - W)), mode="edge")
    blocks = pad.reshape(Hp // block, block, Wp // block, block).transpose(0, 2, 1, 3)
    return blocks.reshape(-1, block * block), (Hp, Wp)


def blocks_to_image(blocks: np.ndarray, padded: tuple[int, int], shape: tuple[int, int], block: int) -> np.ndarray:
    """Inverse of :func:`image_to_blocks`, cropped to the original ``shape``."""
    Hp, Wp = padded
    img = blocks.reshape(Hp // block, Wp // block, block, block).transpose(0, 2, 1, 3).reshape(Hp, Wp)
    return img[: shape[0], : shape[1]]


def block_cs(img: np.ndarray, measure_fn: Callable[[np.ndarray], np.ndarray],
             reconstruct: Callable[[np.ndarray], np.ndarray], block: int = 33) -> np.ndarray:
    """Measure every block with ``measure_fn(blocks) -> Y``, reconstruct with ``reconstruct(Y)``,
    stitch and crop; returns the reconstructed ``H x W`` image."""
    blocks, padded = image_to_blocks(img, block)
    rec = reconstruct(measure_fn(blocks))
    return blocks_to_image(np.asarray(rec, dtype=np.float64), padded, img.shape, block)


def image_metrics(img: np.ndarray, rec: np.ndarray) -> dict[str, float]:
    """Whole-image ``{"psnr", "ssim", "mse"}`` (data range 1; PSNR capped at 100 dB)."""
    from skimage.metrics import structural_similarity

    from .metrics import PSNR_CAP_DB

    img = np.asarray(img, dtype=np.float64)
    rec = np.asarray(rec, dtype=np.float64)
    err = float(np.mean((img - rec) ** 2))
    psnr = PSNR_CAP_DB if err == 0 else min(PSNR_CAP_DB, -10.0 * np.log10(err))
    return {"psnr": float(psnr), "ssim": float(structural_similarity(img, rec, data_range=1.0)), "mse": err}
