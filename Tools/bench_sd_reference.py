#!/usr/bin/env python3
"""PyTorch side of `storyloom bench sd`: times diffusers' UNet2DConditionModel and AutoencoderKL on
the random SD v1.5 weights Storyloom wrote, and prints JSON on stdout.

    bench_sd_reference.py --folder DIR --threads N --reps R

DIR holds unet/ and vae/ (config.json + diffusion_pytorch_model.safetensors, fp16, loaded as float32),
inputs.safetensors (prompt_embeddings, small, large, latent) and check.safetensors (Storyloom's UNet output on
`small`, compared here so the report can say both sides compute the same function).
Rows, in order: UNet step at 32×32 latents (batch 2), at 64×64 (batch 2), VAE decode of one 64×64 latent.
"""
import argparse
import json
import os
import sys
import time


def peak_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    import torch
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import load_file

    torch.set_num_threads(args.threads)
    unet = UNet2DConditionModel.from_pretrained(os.path.join(args.folder, "unet"), torch_dtype=torch.float32).eval()
    vae = AutoencoderKL.from_pretrained(os.path.join(args.folder, "vae"), torch_dtype=torch.float32).eval()
    inputs = load_file(os.path.join(args.folder, "inputs.safetensors"))
    check = load_file(os.path.join(args.folder, "check.safetensors"))["unet_small"]
    t = torch.tensor(999)

    def best(fn):
        fn()  # warm-up
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    out = {"torch": torch.__version__, "diffusers": diffusers.__version__, "threads": torch.get_num_threads(),
           "attention": type(unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.processor).__name__}
    with torch.inference_mode():
        ours = unet(inputs["small"], t, encoder_hidden_states=inputs["prompt_embeddings"]).sample
        out["check_max_abs_diff"] = float((ours - check).abs().max())
        out["seconds"] = [
            best(lambda: unet(inputs["small"], t, encoder_hidden_states=inputs["prompt_embeddings"])),
            best(lambda: unet(inputs["large"], t, encoder_hidden_states=inputs["prompt_embeddings"])),
            best(lambda: vae.decode(inputs["latent"])),
        ]
    out["peak_mb"] = peak_mb()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
