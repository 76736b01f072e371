#!/usr/bin/env python3
"""The attribute accuracy a Stable Diffusion model can reach at best through its own VAE.

    .venv/bin/python Tools/train/vae_ceiling.py [--vae Examples/StoryWorld/models/sd/vae] [--out runs/vae-ceiling]

Every image SD draws passes through its VAE decoder, so the ground truth encoded and decoded again
(latent mean, no noise) bounds what any UNet can show `attributes`. This renders the evaluation world
of `Workflows/storyworld-attributes.yaml` (seed 11, 200 stories), replaces each first panel by its VAE
reconstruction in a copy, and runs the `attributes` step on it, split by scene size as that workflow
does. Compare its table with the workflow's `gen` rows: what the UNet misses below this ceiling is the
UNet's; what the ceiling misses is the VAE's (or the checker's).
"""
import argparse
import glob
import os
import shutil
import subprocess

import numpy as np
import torch
from diffusers import AutoencoderKL
from PIL import Image

import storyworld_data as sw

WORKFLOW = """name: vae-ceiling
collection: world
steps:
  - {id: one_object, use: attributes, panels: first, inputs: {image: image}, params: {objects: 1}}
  - {id: two_objects, use: attributes, panels: first, inputs: {image: image}, params: {objects: 2}}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vae", default=os.path.join(sw.REPO, "Examples", "StoryWorld", "models", "sd", "vae"))
    ap.add_argument("--out", default=os.path.join(sw.REPO, "runs", "vae-ceiling"))
    ap.add_argument("--seed", type=int, default=11, help="evaluation world seed (storyworld-attributes.yaml's)")
    ap.add_argument("--stories", type=int, default=200)
    args = ap.parse_args()
    if args.seed not in sw.EVAL_SEEDS:
        raise SystemExit(f"error: --seed {args.seed} is not an evaluation seed (1-99)")
    world = os.path.join(args.out, "world")
    # A fresh render each time: the first panels below are overwritten in place.
    for folder in [world, os.path.join(args.out, "store")]:
        shutil.rmtree(folder, ignore_errors=True)
    sw.make_world(world, args.seed, args.stories, 0, "evaluation")

    vae = AutoencoderKL.from_pretrained(args.vae, torch_dtype=torch.float32).eval()
    paths = sorted(glob.glob(os.path.join(world, "images", "*-1.png")))
    with torch.no_grad():
        for i in range(0, len(paths), 50):
            chunk = paths[i:i + 50]
            x = torch.from_numpy(np.stack([np.asarray(Image.open(p).convert("RGB")) for p in chunk]))
            x = x.float().permute(0, 3, 1, 2) / 127.5 - 1
            rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
            u8 = ((rec + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
            for p, image in zip(chunk, u8):
                Image.fromarray(image).save(p)
    print(f"{len(paths)} first panels replaced by their reconstructions through {args.vae}", flush=True)

    workflow = os.path.join(args.out, "vae-ceiling.yaml")
    with open(workflow, "w") as f:
        f.write(WORKFLOW)
    subprocess.run([sw.storyloom_binary(), "run", workflow, "--store", os.path.join(args.out, "store")], check=True)


if __name__ == "__main__":
    main()
