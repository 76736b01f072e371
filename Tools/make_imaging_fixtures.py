#!/usr/bin/env python3
"""Writes the golden fixtures for Tests/ImagingTests (run from the repository root):

    .venv/bin/python Tools/make_imaging_fixtures.py

Everything is deterministic (fixed numpy seeds). Outputs, all small, in
Tests/ImagingTests/Fixtures/:
  inputs/         PNG and JPEG test inputs of every decoder variant
  decoded/        the 8-bit pixels each input must decode to (as 8-bit PNG), computed from the
                  source arrays (PNG) or by Pillow (JPEG)
  resize/         Pillow Image.resize outputs for each source x size x filter, plus odd
                  geometries (inputs/odd_*) that exercise Pillow 13's pass order
  crop/, clip/    centre crops and CLIPImageProcessorPil outputs
  metrics/        image pairs for PSNR/SSIM
  manifest.json   what each file is, with versions and the reference values
"""
import io
import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import PIL
import skimage
import transformers
from PIL import Image
from skimage.metrics import structural_similarity
from transformers.image_transforms import center_crop as hf_center_crop

ROOT = Path(__file__).resolve().parent.parent / "Tests" / "ImagingTests" / "Fixtures"
FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def pattern(width, height, channels, seed):
    """Gradients, a hard-edged rectangle, a diagonal line and noise: stresses every kernel tap."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    planes = []
    for c in range(channels):
        v = 255 * (x / max(width - 1, 1)) * (0.3 + 0.25 * c) + 120 * (y / max(height - 1, 1))
        v = np.where((x > width * 0.55) & (y < height * 0.6), 255 - v * 0.5, v)  # sharp rectangle
        v = np.where(np.abs(x - y * width / height) < 1.0, 20 + 70 * c, v)  # thin diagonal
        v += rng.normal(0, 18, size=v.shape)
        planes.append(v)
    return np.clip(np.rint(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def save_png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    a = array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array
    Image.fromarray(a, mode).save(path, format="PNG")


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(path, array, bit_depth, color_type, interlace=False):
    """Minimal PNG writer for variants Pillow cannot write: 16-bit RGB(A), 4-bit grey, Adam7."""
    height, width = array.shape[:2]
    samples = array.reshape(height, width, -1)

    def rows_bytes(sub):
        out = b""
        for row in sub:
            flat = row.reshape(-1)
            if bit_depth == 16:
                line = flat.astype(">u2").tobytes()
            elif bit_depth == 8:
                line = flat.astype(np.uint8).tobytes()
            else:  # sub-byte grey, packed MSB first
                per_byte = 8 // bit_depth
                padded = np.concatenate([flat, np.zeros((-len(flat)) % per_byte, dtype=flat.dtype)])
                packed = []
                for i in range(0, len(padded), per_byte):
                    b = 0
                    for v in padded[i:i + per_byte]:
                        b = (b << bit_depth) | int(v)
                    packed.append(b)
                line = bytes(packed)
            out += b"\x00" + line  # filter type None
        return out

    if interlace:
        data = b""
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                data += rows_bytes(sub)
    else:
        data = rows_bytes(samples)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(data, 9))
                     + png_chunk(b"IEND", b""))


def torchvision_center_crop_origin(size, crop):
    """Transcription of torchvision.transforms.functional.center_crop's arithmetic (torchvision is
    not installed here): pad (crop - size) // 2 before, then int(round((size - crop) / 2.0))."""
    if crop > size:
        return -((crop - size) // 2)
    return int(round((size - crop) / 2.0))


def crop_with_zeros(array, top, left, height, width):
    out = np.zeros((height, width) + array.shape[2:], dtype=array.dtype)
    h, w = array.shape[:2]
    y0, y1 = max(top, 0), min(top + height, h)
    x0, x1 = max(left, 0), min(left + width, w)
    if y0 < y1 and x0 < x1:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = array[y0:y1, x0:x1]
    return out


def main():
    manifest = {
        "generator": "Tools/make_imaging_fixtures.py",
        "versions": {"Pillow": PIL.__version__, "scikit-image": skimage.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__},
    }
    rel = lambda p: str(p.relative_to(ROOT))

    # ---- inputs and their expected 8-bit decodes ------------------------------------------
    rgb = pattern(37, 23, 3, seed=1)
    rgba = pattern(37, 23, 4, seed=2)
    rgba[..., 3] = np.clip(np.mgrid[0:23, 0:37][1] * 9 - 40, 0, 255)  # 0 ... partial ... 255
    rgba[:3, :, 3] = 255
    grey = pattern(29, 31, 1, seed=3)
    decode_cases = []

    def add_decode(name, expected):
        decoded = ROOT / "decoded" / (Path(name).stem + ".png")
        save_png(decoded, expected)
        decode_cases.append({"input": f"inputs/{name}", "expected": rel(decoded),
                             "channels": int(expected.shape[2]) if expected.ndim == 3 else 1})

    save_png(ROOT / "inputs/rgb_37x23.png", rgb)
    add_decode("rgb_37x23.png", rgb)
    save_png(ROOT / "inputs/rgba_37x23.png", rgba)
    add_decode("rgba_37x23.png", rgba)
    save_png(ROOT / "inputs/grey_29x31.png", grey)
    add_decode("grey_29x31.png", grey[..., 0])

    palette_rng = np.random.default_rng(4)
    palette = palette_rng.integers(0, 256, size=(16, 3), dtype=np.uint8)
    indices = palette_rng.integers(0, 16, size=(14, 20), dtype=np.uint8)
    p_image = Image.frombytes("P", (20, 14), indices.tobytes())
    p_image.putpalette(palette.reshape(-1).tolist())
    p_image.save(ROOT / "inputs/palette_20x14.png")
    add_decode("palette_20x14.png", palette[indices])
    p_image.save(ROOT / "inputs/palette_trns_20x14.png", transparency=bytes([0, 90, 255] + [255] * 13))
    alpha = np.array([0, 90, 255] + [255] * 13, dtype=np.uint8)[indices]
    add_decode("palette_trns_20x14.png", np.dstack([palette[indices], alpha]))

    la = pattern(15, 9, 2, seed=5)
    Image.fromarray(la).save(ROOT / "inputs/grey_alpha_15x9.png")
    add_decode("grey_alpha_15x9.png", np.dstack([la[..., 0]] * 3 + [la[..., 1]]))

    grey_trns = pattern(12, 10, 1, seed=6)[..., 0]
    grey_trns[2:5, 3:9] = 77
    Image.fromarray(grey_trns).save(ROOT / "inputs/grey_trns_12x10.png", transparency=77)
    add_decode("grey_trns_12x10.png", np.dstack([grey_trns] * 3 + [np.where(grey_trns == 77, 0, 255).astype(np.uint8)]))

    rng16 = np.random.default_rng(7)
    grey16 = rng16.integers(0, 65536, size=(11, 19), dtype=np.uint16)
    raw_png(ROOT / "inputs/grey16_19x11.png", grey16, 16, 0)
    add_decode("grey16_19x11.png", (grey16 >> 8).astype(np.uint8))
    rgb16 = rng16.integers(0, 65536, size=(7, 13, 3), dtype=np.uint16)
    raw_png(ROOT / "inputs/rgb16_13x7.png", rgb16, 16, 2)
    add_decode("rgb16_13x7.png", (rgb16 >> 8).astype(np.uint8))
    rgba16 = rng16.integers(0, 65536, size=(6, 9, 4), dtype=np.uint16)
    raw_png(ROOT / "inputs/rgba16_9x6.png", rgba16, 16, 6)
    add_decode("rgba16_9x6.png", (rgba16 >> 8).astype(np.uint8))
    grey4 = rng16.integers(0, 16, size=(5, 11), dtype=np.uint8)
    raw_png(ROOT / "inputs/grey4_11x5.png", grey4, 4, 0)
    add_decode("grey4_11x5.png", grey4 * 17)
    bits = rng16.integers(0, 2, size=(5, 21), dtype=np.uint8)
    Image.fromarray(bits * 255).convert("1").save(ROOT / "inputs/bilevel_21x5.png")
    add_decode("bilevel_21x5.png", bits * 255)
    interlaced = pattern(19, 13, 3, seed=8)
    raw_png(ROOT / "inputs/interlaced_19x13.png", interlaced, 8, 2, interlace=True)
    add_decode("interlaced_19x13.png", interlaced)

    # JPEGs: the expected decode is Pillow's (libjpeg-turbo, islow IDCT, fancy upsampling).
    photo = np.clip(pattern(40, 30, 3, seed=9).astype(int) // 2 + 60, 0, 255).astype(np.uint8)
    for name, image, options in [
        ("photo_40x30.jpg", Image.fromarray(photo), {"quality": 85}),
        ("progressive_40x30.jpg", Image.fromarray(photo), {"quality": 80, "progressive": True}),
        ("grey_24x16.jpg", Image.fromarray(pattern(24, 16, 1, seed=10)[..., 0]), {"quality": 90}),
    ]:
        image.save(ROOT / "inputs" / name, format="JPEG", **options)
        with Image.open(ROOT / "inputs" / name) as decoded:
            add_decode(name, np.asarray(decoded))
    manifest["decode"] = decode_cases

    # ---- resizes -------------------------------------------------------------------------
    sources = {"rgb_37x23": rgb, "rgba_37x23": rgba, "grey_29x31": grey[..., 0]}
    resize_cases = []
    for source_name, array in sources.items():
        image = Image.fromarray(array)
        w, h = image.size
        for size in [(16, 16), (13, 29), (80, 50), (w, 10), (20, h), (5, 3), (1, 1), (w, h)]:
            for filter_name, resample in FILTERS.items():
                out = image.resize(size, resample=resample)  # reducing_gap=None, no box
                path = ROOT / "resize" / f"{source_name}_{size[0]}x{size[1]}_{filter_name}.png"
                save_png(path, np.asarray(out))
                resize_cases.append({"input": f"inputs/{source_name}.png", "filter": filter_name,
                                     "width": size[0], "height": size[1], "expected": rel(path)})
    # Odd geometries with non-integer scales both ways. Pillow 13 runs the vertical pass first when
    # the height loses more than twice as many pixels as the width (ImagingResampleInner); the
    # 23x57 -> 16x39 case is CLIPImageProcessor's shortest-edge-16 resize, and 16x43 / 16x42 sit
    # on either side of that threshold (14 == 2 * 7 is horizontal first, 15 > 14 vertical first).
    odd_sources = {
        "odd_rgb_23x57": (pattern(23, 57, 3, seed=20), [(16, 39), (16, 43), (16, 42), (30, 20), (20, 9)]),
        "odd_rgba_23x57": (pattern(23, 57, 4, seed=21), [(16, 39), (30, 20)]),
        "odd_rgba_57x23": (pattern(57, 23, 4, seed=22), [(39, 16), (60, 10)]),
        "odd_grey_33x33": (pattern(33, 33, 1, seed=23)[..., 0], [(16, 16), (40, 13)]),
        "odd_rgb_100x7": (pattern(100, 7, 3, seed=24), [(13, 5), (13, 3)]),
    }
    for source_name, (array, sizes) in odd_sources.items():
        save_png(ROOT / "inputs" / f"{source_name}.png", array)
        image = Image.fromarray(array)
        for size in sizes:
            for filter_name, resample in FILTERS.items():
                out = image.resize(size, resample=resample)
                path = ROOT / "resize" / f"{source_name}_{size[0]}x{size[1]}_{filter_name}.png"
                save_png(path, np.asarray(out))
                resize_cases.append({"input": f"inputs/{source_name}.png", "filter": filter_name,
                                     "width": size[0], "height": size[1], "expected": rel(path)})
    manifest["resize"] = resize_cases

    # ---- centre crops --------------------------------------------------------------------
    crop_cases = []
    for cw, ch in [(16, 16), (35, 21), (40, 28), (10, 30), (34, 20), (37, 23)]:
        hf = hf_center_crop(rgb, (ch, cw), input_data_format="channels_last")
        path = ROOT / "crop" / f"transformers_{cw}x{ch}.png"
        save_png(path, hf)
        crop_cases.append({"convention": "transformers", "width": cw, "height": ch, "expected": rel(path)})
        tv = crop_with_zeros(rgb, torchvision_center_crop_origin(23, ch), torchvision_center_crop_origin(37, cw), ch, cw)
        path = ROOT / "crop" / f"torchvision_{cw}x{ch}.png"
        save_png(path, tv)
        crop_cases.append({"convention": "torchvision", "width": cw, "height": ch, "expected": rel(path)})
    manifest["centerCrop"] = {"input": "inputs/rgb_37x23.png", "cases": crop_cases}

    # ---- CLIPImageProcessor (PIL backend) end to end ---------------------------------------
    from transformers import CLIPImageProcessorPil
    clip_cases = []
    for source_name, shortest, cw, ch in [("rgb_37x23", 24, 20, 20), ("rgb_37x23", 24, 35, 21),
                                          ("grey_29x31", 17, 15, 16), ("rgb_37x23", 9, 17, 11)]:
        array = sources[source_name]
        pil = Image.fromarray(array).convert("RGB")
        common = dict(size={"shortest_edge": shortest}, crop_size={"height": ch, "width": cw})
        raw = CLIPImageProcessorPil(do_rescale=False, do_normalize=False, **common)(pil, return_tensors="np")["pixel_values"][0]
        assert np.all(raw == np.rint(raw)), "un-normalised CLIP output should be whole numbers"
        crop_path = ROOT / "clip" / f"{source_name}_s{shortest}_{cw}x{ch}.png"
        save_png(crop_path, np.transpose(raw, (1, 2, 0)).astype(np.uint8))
        processor = CLIPImageProcessorPil(**common)
        values = processor(pil, return_tensors="np")["pixel_values"][0].astype("<f4")
        value_path = ROOT / "clip" / f"{source_name}_s{shortest}_{cw}x{ch}.f32"
        value_path.write_bytes(values.tobytes())
        clip_cases.append({"input": f"inputs/{source_name}.png", "shortestEdge": shortest, "width": cw, "height": ch,
                           "crop": rel(crop_path), "pixelValues": rel(value_path),
                           "mean": [float(v) for v in processor.image_mean],
                           "std": [float(v) for v in processor.image_std],
                           "rescale": float(processor.rescale_factor)})
    manifest["clip"] = clip_cases

    # ---- metrics ---------------------------------------------------------------------------
    metric_cases = []
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=30)
    rgb_jpeg = np.asarray(Image.open(io.BytesIO(buffer.getvalue())))
    noise_rng = np.random.default_rng(11)
    grey_noisy = np.clip(grey[..., 0].astype(int) + noise_rng.integers(-30, 31, size=grey.shape[:2]), 0, 255).astype(np.uint8)
    rgba_shift = np.clip(rgba.astype(int) + np.array([12, -7, 3, -20]), 0, 255).astype(np.uint8)
    rgb_spots = rgb.copy()
    rgb_spots[5:9, 10:30] = 255 - rgb_spots[5:9, 10:30]
    for name, a, b in [("rgb_vs_jpeg30", rgb, rgb_jpeg), ("grey_vs_noisy", grey[..., 0], grey_noisy),
                       ("rgba_vs_shifted", rgba, rgba_shift), ("rgb_vs_spots", rgb, rgb_spots)]:
        path_a, path_b = ROOT / "metrics" / f"{name}_a.png", ROOT / "metrics" / f"{name}_b.png"
        save_png(path_a, a)
        save_png(path_b, b)
        fa, fb = a.astype(np.float64), b.astype(np.float64)
        psnr = 10 * math.log10(255.0 ** 2 / np.mean((fa - fb) ** 2))
        ssim = structural_similarity(a, b, channel_axis=-1 if a.ndim == 3 else None, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False, data_range=255)
        metric_cases.append({"a": rel(path_a), "b": rel(path_b), "psnr": psnr, "ssim": float(ssim)})
    manifest["metrics"] = metric_cases

    (ROOT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    print(f"wrote {sum(1 for p in ROOT.rglob('*') if p.is_file())} files, {total} bytes")


if __name__ == "__main__":
    main()
