import numpy as np
import pytest

from zerotune.data.imagefolder import load_image, load_image_folder
from zerotune.errors import UserError

Image = pytest.importorskip("PIL.Image")


def _png(path, rgb, size=(4, 6)):
    """A solid-colour PNG of (height, width) = size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size[1], size[0]), rgb).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "shapes"
    _png(root / "dog" / "b.png", (0, 255, 0))
    _png(root / "cat" / "a.png", (255, 0, 0))
    _png(root / "cat" / "nested" / "c.png", (10, 20, 30))
    _png(root / "dog" / "a.PNG", (0, 0, 255))
    (root / "dog" / "notes.txt").write_text("not an image")  # ignored: not an image extension
    _png(root / "dog" / ".hidden.png", (1, 1, 1))  # ignored: hidden
    return root


def test_load_rgb_values(folder):
    ds = load_image_folder(folder)
    assert ds.class_names == ["cat", "dog"]
    assert ds.x.shape == (4, 3, 4, 6) and ds.x.dtype == np.float32
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 0, 1, 1]
    files = [f.split("shapes/")[1] for f in ds.extra["files"]]
    assert files == ["cat/a.png", "cat/nested/c.png", "dog/a.PNG", "dog/b.png"]
    np.testing.assert_allclose(ds.x[0, :, 2, 3], [1, 0, 0])
    np.testing.assert_allclose(ds.x[1, :, 0, 0], np.array([10, 20, 30]) / 255, rtol=1e-6)
    np.testing.assert_allclose(ds.x[2, :, 3, 5], [0, 0, 1])
    assert ds.task == "classification" and ds.is_image


def test_resize_and_grayscale(folder):
    ds = load_image_folder(folder, image_size=(8, 5), grayscale=True)
    assert ds.x.shape == (4, 1, 8, 5)
    # Pillow's "L" is 0.299 R + 0.587 G + 0.114 B; solid images stay solid after resizing.
    np.testing.assert_allclose(ds.x[0], round(0.299 * 255) / 255, atol=1 / 255)
    np.testing.assert_allclose(ds.x[3], round(0.587 * 255) / 255, atol=1 / 255)
    assert load_image_folder(folder, image_size=7).x.shape == (4, 3, 7, 7)


def test_jpeg_and_rgba(tmp_path):
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8), (200, 100, 50)).save(root / "a" / "x.jpg", quality=95)
    Image.new("RGBA", (8, 8), (10, 20, 30, 0)).save(root / "a" / "y.png")
    ds = load_image_folder(root)
    np.testing.assert_allclose(ds.x[0, :, 4, 4], np.array([200, 100, 50]) / 255, atol=3 / 255)
    np.testing.assert_allclose(ds.x[1, :, 0, 0], np.array([10, 20, 30]) / 255, rtol=1e-6)  # alpha dropped


def test_mixed_sizes_need_size(folder):
    _png(folder / "dog" / "big.png", (5, 5, 5), size=(9, 9))
    with pytest.raises(UserError, match="big.png is 9x9 but .* is 4x6; set image_size"):
        load_image_folder(folder)
    assert load_image_folder(folder, image_size=(4, 6)).x.shape == (5, 3, 4, 6)


def test_unreadable_image_names_file(folder):
    (folder / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(UserError, match=r"cannot read image .*cat/broken\.jpg"):
        load_image_folder(folder)
    good = folder / "dog" / "b.png"
    (folder / "dog" / "cut.png").write_bytes(good.read_bytes()[:40])  # truncated PNG
    with pytest.raises(UserError, match="cut.png"):
        load_image(folder / "dog" / "cut.png")


def test_empty_folders(tmp_path):
    with pytest.raises(UserError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "cat").mkdir()
    with pytest.raises(UserError, match="class folder .*cat has no images"):
        load_image_folder(tmp_path)
    with pytest.raises(UserError, match="is not a directory"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(UserError, match="image_size must be"):
        load_image_folder(tmp_path, image_size=(0, 4))
