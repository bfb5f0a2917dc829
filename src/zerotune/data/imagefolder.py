"""Images in one sub-folder per class (the layout of torchvision's ImageFolder), read with Pillow.

::

    root/cat/001.png
    root/cat/nested/002.jpg
    root/dog/003.jpeg

Class names are the sorted sub-folder names; class index i is ``class_names[i]``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import RawDataset

EXTENSIONS = (".png", ".jpg", ".jpeg")


def _pil():
    try:
        from PIL import Image, ImageOps
    except ImportError:  # pragma: no cover - Pillow is a dependency of the image extras
        raise UserError("reading image folders needs Pillow: pip install pillow") from None
    return Image, ImageOps


def _parse_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if not (isinstance(h, int) and isinstance(w, int)) or h < 1 or w < 1:
        raise UserError(f"image_size must be a positive int or (height, width), got {size!r}")
    return h, w


def list_image_folder(path: str | os.PathLike) -> tuple[list[str], list[tuple[Path, int]]]:
    """Find the classes and image files of an image folder without decoding any image.

    Hidden files and files whose extension is not one of ``EXTENSIONS`` are skipped.

    Returns:
        (class_names, [(file, class_index), ...]) in a stable, sorted order.

    Raises:
        UserError: the folder is missing, has no class sub-folders, or a class has no images.
    """
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{root} is not a directory; expected one sub-folder of images per class")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"{root} has no class sub-folders; expected e.g. {root}/cat/*.png, {root}/dog/*.png")
    items = []
    for index, name in enumerate(classes):
        files = sorted(
            f
            for f in (root / name).rglob("*")
            if f.suffix.lower() in EXTENSIONS
            and f.is_file()
            and not any(part.startswith(".") for part in f.relative_to(root).parts)
        )
        if not files:
            raise UserError(f"class folder {root / name} has no images; allowed: {', '.join(EXTENSIONS)}")
        items.extend((f, index) for f in files)
    return classes, items


def load_image(
    file: str | os.PathLike, size: tuple[int, int] | None = None, grayscale: bool = False
) -> np.ndarray:
    """Decode one image to float32 (C, H, W) in [0, 1].

    Args:
        file: a PNG or JPEG file.
        size: (height, width) to resize to (bilinear), or None to keep the image's own size.
        grayscale: one channel ("L") instead of three ("RGB"); alpha is dropped.

    Raises:
        UserError: the file cannot be read or decoded.
    """
    Image, ImageOps = _pil()
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than fails) on oversized images; make that an error for us.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as img:
                img.load()  # decode now, so a truncated file fails here and not later
                img = ImageOps.exif_transpose(img)  # phone photos store their rotation in EXIF
                img = img.convert("L" if grayscale else "RGB")
                if size is not None and img.size != (size[1], size[0]):
                    img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)  # PIL: (W, H)
                arr = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise UserError(f"{file} does not exist") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        # Pillow reports bad image data as OSError (UnidentifiedImageError, truncated), SyntaxError
        # (some malformed headers) or ValueError.
        raise UserError(f"cannot read image {file}: {e}; expected a valid PNG or JPEG") from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (H, W[, C]) → (C, H, W)
    out = arr.astype(np.float32)
    out /= np.float32(255)  # divide, not multiply by 1/255: exactly k/255 rounded once
    return out


def load_image_folder(
    path: str | os.PathLike,
    image_size: int | tuple[int, int] | None = None,
    grayscale: bool = False,
) -> RawDataset:
    """Load every image of a one-sub-folder-per-class directory into memory.

    Args:
        path: the root folder; each sub-folder is a class (images may sit in nested folders).
        image_size: resize every image to this (height, width), or an int for a square; None
            keeps the original sizes, which must then all be equal.
        grayscale: load one channel instead of RGB.

    Returns:
        RawDataset with x float32 (N, C, H, W) in [0, 1], y int64, sorted class names, and the
        image paths in ``extra["files"]`` (for showing misclassified examples).

    Raises:
        UserError: missing or empty folders, an unreadable image, or mixed sizes without
            image_size.
    """
    hw = _parse_size(image_size)
    classes, items = list_image_folder(path)
    first = load_image(items[0][0], hw, grayscale)
    c, h, w = first.shape
    x = np.empty((len(items), c, h, w), dtype=np.float32)  # (N, C, H, W), filled in place
    x[0] = first
    for i, (file, _) in enumerate(items[1:], start=1):
        img = load_image(file, hw, grayscale)
        if img.shape != first.shape:
            raise UserError(
                f"{file} is {img.shape[1]}x{img.shape[2]} but {items[0][0]} is {h}x{w}; "
                "set image_size so every image is resized to the same height and width"
            )
        x[i] = img
    y = np.array([label for _, label in items], dtype=np.int64)
    return RawDataset(
        x=x, y=y, task="classification", class_names=classes,
        extra={"source": "imagefolder", "path": str(path), "files": [str(f) for f, _ in items]},
    )  # fmt: skip
