#!/usr/bin/env python3
"""Copies trained StoryWorld models into the repository as the embedded default (issue #6):

    .venv/bin/python Tools/train/export_models.py --runs runs [--out Examples/StoryWorld/models]
    .venv/bin/python Tools/train/export_models.py --unet runs/sd-more/model/unet   # a continued UNet only
    .venv/bin/python Tools/train/export_models.py --sd runs/sd-neg-more/model      # a new text encoder and its UNet

RUNS/{clip,sd,gill}/model → OUT/{clip,sd,gill}, every float32 tensor of every *.safetensors stored as
float16 (half the size; Storyloom and transformers/diffusers widen on load), everything else copied as is.
The GILL folder holds opt/, clip/ and sd/ (its decoder); identical files cost nothing extra in git.
Prints each folder's size and the largest difference fp16 storage makes to any tensor (relative).
"""
import argparse
import os
import shutil

import torch
from safetensors.torch import load_file, save_file


def export(src, dst):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    worst = 0.0
    for root, _, files in os.walk(src):
        rel = os.path.relpath(root, src)
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
        for f in sorted(files):
            s, d = os.path.join(root, f), os.path.join(dst, rel, f)
            if not f.endswith(".safetensors"):
                shutil.copy(s, d)
                continue
            tensors = load_file(s)
            out = {}
            for k, v in tensors.items():
                if v.dtype == torch.float32:
                    h = v.to(torch.float16)
                    if not torch.isfinite(h).all():
                        raise SystemExit(f"error: {s}: tensor {k} overflows float16 (max |x| {v.abs().max():.3g})")
                    worst = max(worst, float(((h.float() - v).abs().max() / v.abs().max().clamp_min(1e-12))))
                    out[k] = h
                else:
                    out[k] = v
            save_file({k: v.contiguous() for k, v in out.items()}, d, metadata={"format": "pt"})
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(dst) for f in fs)
    print(f"{src} -> {dst}: {size / 1e6:.1f} MB, largest fp16 rounding {worst:.2e} (relative to the tensor's max)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--runs", help="the training runs folder (clip/, sd/, gill/ with model/ inside)")
    which.add_argument("--unet", help="only this diffusers UNet folder (train_sd.py --stage unet --init-unet), into sd/unet "
                                      "and GILL's decoder gill/sd/unet; everything else stays")
    which.add_argument("--sd", help="a diffusers SD folder whose text encoder and UNet replace sd/'s and gill/sd/'s "
                                    "(train_sd.py --clip with another CLIP); the VAE, tokenizer and configs stay, and GILL's "
                                    "mapper then needs retraining onto the new text encoder (train_gill_story.py --train mapper)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Examples", "StoryWorld", "models"))
    args = ap.parse_args()
    if args.unet:
        for name in ["sd", os.path.join("gill", "sd")]:
            export(args.unet, os.path.join(args.out, name, "unet"))
    elif args.sd:
        for name in ["sd", os.path.join("gill", "sd")]:
            for part in ["text_encoder", "unet"]:
                export(os.path.join(args.sd, part), os.path.join(args.out, name, part))
    else:
        for name in ["clip", "sd", "gill"]:
            export(os.path.join(args.runs, name, "model"), os.path.join(args.out, name))
