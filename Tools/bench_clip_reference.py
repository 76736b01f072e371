#!/usr/bin/env python3
"""PyTorch side of `storyloom bench clip`: times a transformers CLIP vision tower on the same
weights Storyloom loaded and prints JSON on stdout.

    bench_clip_reference.py --model DIR --threads N --batches 1,8 --reps R [--check pixels.safetensors]

DIR is a CLIPVisionModelWithProjection folder (config.json + model.safetensors) written by the
Swift benchmark. With --check, also returns the image embeddings of the `pixel_values` tensor in
that file, so the benchmark can confirm both sides compute the same function.
"""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--check")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import CLIPVisionModelWithProjection

    torch.set_num_threads(args.threads)
    model = CLIPVisionModelWithProjection.from_pretrained(args.model, dtype=torch.float32).eval()
    size = model.config.image_size
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads(),
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "results": []}
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        if args.check:
            from safetensors.torch import load_file
            pixels = load_file(args.check)["pixel_values"]
            out["check_image_embeds"] = model(pixel_values=pixels).image_embeds.tolist()
        for batch in [int(b) for b in args.batches.split(",")]:
            pixels = torch.randn(batch, 3, size, size, generator=gen)
            model(pixel_values=pixels)  # warm-up
            times = []
            for _ in range(args.reps):
                start = time.perf_counter()
                model(pixel_values=pixels)
                times.append(time.perf_counter() - start)
            out["results"].append({"batch": batch, "seconds": min(times), "all": times})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
