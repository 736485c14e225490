"""harness.imageio reading: 16-bit kept, EXIF orientation applied, broken links named,
oversized images refused before decoding; every problem an InputError naming the file."""

import io
import os
import struct
import sys
import time
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from harness.errors import ConfigError, InputError
from harness.imageio import (DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, load_image, load_mask, orient,
                             parse_max_pixels, resolve_max_pixels, save_png)

cv2 = pytest.importorskip("cv2")


def rgb16(h=40, w=56, seed=0):
    return np.random.default_rng(seed).integers(0, 65536, (h, w, 3)).astype(np.uint16)


def write16(path, rgb, alpha=None):
    """A 16-bit PNG/TIFF through OpenCV (which takes BGR order)."""
    bgr = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    if alpha is not None:
        bgr = np.dstack([bgr, alpha])
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr))
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_exif_chunk(path, orientation):
    """Insert an eXIf chunk (EXIF Orientation) right after IHDR of a PNG file."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    raw = exif.tobytes()
    raw = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
    d = path.read_bytes()
    path.write_bytes(d[:33] + png_chunk(b"eXIf", raw) + d[33:])
    return path


def png_claiming(path, width, height):
    """A small valid PNG whose IHDR (CRC fixed) declares ``width`` x ``height``."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(buf, format="PNG")
    d = bytearray(buf.getvalue())
    d[16:24] = struct.pack(">II", width, height)
    d[29:33] = struct.pack(">I", zlib.crc32(bytes(d[12:29])))
    path.write_bytes(bytes(d))
    return path


# --- 16-bit ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rgb.png", "rgba.png", "rgb.tif", "grey.png"])
def test_16bit_files_load_exactly_as_written(tmp_path, kind):
    a = rgb16()
    if kind == "grey.png":
        write16(tmp_path / kind, a[..., 0])
        expect = np.repeat(a[..., :1], 3, axis=2)
    elif kind == "rgba.png":
        write16(tmp_path / kind, a, alpha=np.full(a.shape[:2], 1234, np.uint16))
        expect = a
    else:
        write16(tmp_path / kind, a)
        expect = a
    got = load_image(tmp_path / kind)
    assert got.dtype == np.uint16 and got.shape == (40, 56, 3) and got.flags.c_contiguous
    assert np.array_equal(got, expect)


def test_8bit_files_stay_uint8_and_16bit_masks_keep_precision(tmp_path):
    img = rgb16()
    save_png(tmp_path / "a.png", (img >> 8).astype(np.uint8))
    got = load_image(tmp_path / "a.png")
    assert got.dtype == np.uint8 and np.array_equal(got, img >> 8)
    # a 16-bit RGB mask: luminance at 16-bit precision, not cut to 8 bits
    ramp = (30000 + 3 * np.arange(56)).astype(np.uint16)  # 56 levels within one 8-bit step or two
    grey = np.repeat(ramp[None, :, None], 40, axis=0)
    write16(tmp_path / "m.png", np.repeat(grey, 3, axis=2))
    m = load_mask(tmp_path / "m.png", (40, 56))
    assert m.dtype == np.float32
    assert np.abs(m - grey[..., 0] / 65535.0).max() < 1e-6
    assert len(np.unique(m)) == 56


def test_truncated_16bit_png_is_one_clear_error_without_decoder_noise(tmp_path, capfd):
    p = write16(tmp_path / "a.png", rgb16())
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(InputError, match=r"a\.png: corrupt or truncated image"):
        load_image(p)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# --- EXIF orientation --------------------------------------------------------------------------

def test_jpeg_with_exif_orientation_loads_as_it_displays(tmp_path):
    stored = np.zeros((48, 80, 3), np.uint8)
    stored[:, :20] = (250, 20, 20)  # a red band on the stored left edge
    stored[:, 20:] = (20, 20, 250)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed = stored rotated 90 degrees clockwise
    p = tmp_path / "r.jpg"
    Image.fromarray(stored).save(p, exif=exif.tobytes(), quality=95)
    raw = np.asarray(Image.open(p).convert("RGB"))  # what the file stores, unrotated
    got = load_image(p)
    assert got.shape == (80, 48, 3)
    assert np.array_equal(got, np.rot90(raw, -1))
    assert got[:10, :, 0].mean() > 200 and got[-10:, :, 2].mean() > 200  # red on top as displayed
    # masks too
    Image.fromarray(stored[..., 0]).save(tmp_path / "m.jpg", exif=exif.tobytes(), quality=95)
    assert load_mask(tmp_path / "m.jpg", (80, 48)).shape == (80, 48)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow_on_8bit_and_16bit_files(tmp_path, orientation):
    a = rgb16(24, 36, seed=orientation)
    a8 = (a >> 8).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a8).save(tmp_path / "a8.png", exif=exif.tobytes())
    expect8 = np.asarray(_transposed(a8, orientation))
    assert np.array_equal(load_image(tmp_path / "a8.png"), expect8)
    assert np.array_equal(orient(a8, orientation), expect8)
    p16 = with_exif_chunk(write16(tmp_path / "a16.png", a), orientation)
    assert np.array_equal(load_image(p16), orient(a, orientation))
    assert load_image(p16).shape[:2] == expect8.shape[:2]
    Image.fromarray(a[..., 0]).save(tmp_path / "g16.png", exif=exif.tobytes())  # 16-bit grey, via Pillow
    assert np.array_equal(load_image(tmp_path / "g16.png")[..., 0], orient(a[..., 0], orientation))
    assert np.array_equal(load_mask(tmp_path / "g16.png"), orient(a[..., 0], orientation) / np.float32(65535.0))


def _transposed(a8, orientation):
    img = Image.fromarray(a8)
    img.getexif()[0x0112] = orientation
    return ImageOps.exif_transpose(img)


# --- links -------------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_dangling_and_looping_links_are_named_broken_links(tmp_path):
    os.symlink(tmp_path / "nowhere.png", tmp_path / "dangling.png")
    os.symlink(tmp_path / "loop.png", tmp_path / "loop.png")
    with pytest.raises(InputError, match=r"broken link: .*dangling\.png -> .*nowhere\.png does not exist"):
        load_image(tmp_path / "dangling.png")
    with pytest.raises(InputError, match=r"broken link: .*loop\.png -> .* symbolic link loop"):
        load_mask(tmp_path / "loop.png")
    save_png(tmp_path / "real.png", np.zeros((16, 16, 3), np.uint8))
    os.symlink(tmp_path / "real.png", tmp_path / "good.png")
    assert load_image(tmp_path / "good.png").shape == (16, 16, 3)


# --- size limit --------------------------------------------------------------------------------

def test_header_claiming_50000_squared_is_refused_fast_without_decoding(tmp_path):
    p = png_claiming(tmp_path / "bomb.png", 50000, 50000)
    t = time.perf_counter()
    with pytest.raises(InputError) as exc:
        load_image(p)
    assert time.perf_counter() - t < 1.0
    msg = str(exc.value)
    assert str(p) in msg and "50000x50000" in msg and f"limit of {DEFAULT_MAX_PIXELS} pixels" in msg
    assert "not decoded" in msg and "--max-pixels" in msg and MAX_PIXELS_ENV in msg
    assert "corrupt" not in msg  # refused on its header, not by failing to decode
    with pytest.raises(InputError, match="50000x50000"):
        load_mask(p)


def test_limit_is_configurable_and_pillow_state_is_restored(tmp_path, monkeypatch):
    save_png(tmp_path / "a.png", np.zeros((64, 64, 3), np.uint8))
    saved = Image.MAX_IMAGE_PIXELS
    with pytest.raises(InputError, match=r"a\.png: image is 64x64 .* over the limit of 4095 pixels"):
        load_image(tmp_path / "a.png", max_pixels=4095)
    assert load_image(tmp_path / "a.png", max_pixels=4096).shape == (64, 64, 3)
    monkeypatch.setenv(MAX_PIXELS_ENV, "63x64")
    with pytest.raises(InputError, match="over the limit of 4032 pixels"):
        load_image(tmp_path / "a.png")
    monkeypatch.setenv(MAX_PIXELS_ENV, "0")  # no limit, Pillow's guard off too
    assert resolve_max_pixels() is None
    assert Image.MAX_IMAGE_PIXELS == saved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(tmp_path / "a.png")
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ConfigError, match=f"{MAX_PIXELS_ENV}: expected a pixel count"):
        load_image(tmp_path / "a.png")
    assert parse_max_pixels("4096x4096") == DEFAULT_MAX_PIXELS and parse_max_pixels(0) is None
    with pytest.raises(ConfigError, match="--max-pixels"):
        parse_max_pixels("-5")


def test_pillow_decompression_bomb_during_decoding_is_the_same_clear_error(tmp_path, monkeypatch):
    from PIL import ImageFile

    save_png(tmp_path / "a.png", np.zeros((64, 64, 3), np.uint8))

    def bomb(self):
        raise Image.DecompressionBombError("Image size (4096 pixels) exceeds limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", bomb)
    with pytest.raises(InputError, match=r"a\.png: image is 64x64 .* not decoded"):
        load_image(tmp_path / "a.png")

    def warn(self):
        warnings.warn("big", Image.DecompressionBombWarning)

    monkeypatch.setattr(ImageFile.ImageFile, "load", warn)
    with pytest.raises(InputError, match=r"a\.png: image is 64x64"):
        load_image(tmp_path / "a.png")


def test_existing_errors_still_name_the_file(tmp_path):
    save_png(tmp_path / "a.png", np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "t.png").write_bytes((tmp_path / "a.png").read_bytes()[:60])
    (tmp_path / "x.png").write_text("hello")
    save_png(tmp_path / "s.png", np.zeros((8, 8, 3), np.uint8))
    for name, expect in [("t.png", "corrupt or truncated"), ("x.png", "not an image file"),
                         ("none.png", "no such file"), ("s.png", "smaller than the minimum")]:
        with pytest.raises(InputError, match=rf"{name}: .*{expect}|{name}: {expect}"):
            load_image(tmp_path / name)
    with pytest.raises(InputError, match="mask is 64x64 but the image is 32x32"):
        load_mask(tmp_path / "a.png", (32, 32))
