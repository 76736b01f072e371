#!/usr/bin/env python3
"""PyTorch side of `storyloom bench sd`: times diffusers' UNet2DConditionModel and AutoencoderKL on
the random SD v1.5 weights Storyloom wrote, and prints JSON on stdout.

    bench_sd_reference.py --folder DIR --threads N --reps R [--storyworld-unet UNET_DIR [--only-storyworld]]

DIR holds unet/ and vae/ (config.json + diffusion_pytorch_model.safetensors, fp16, loaded as float32),
inputs.safetensors (prompt_embeddings, small, large, latent) and check.safetensors (Storyloom's UNet output on
`small`, compared here so the report can say both sides compute the same function).
Rows, in order: UNet step at 32×32 latents (batch 2), at 64×64 (batch 2), VAE decode of one 64×64 latent,
and with --storyworld-unet the committed StoryWorld UNet at 16×16 latents (batch 2; inputs storyworld_latents
and storyworld_prompt, compared with Storyloom's output storyworld_unet in check.safetensors) and the
StoryWorld pipeline (the UNet's parent folder) generating 8 images together from storyworld_pipeline_prompt
(DDIM 25, guidance 4, seeds 1..8, one generator per image), per image, compared with storyworld_pipeline_images;
--only-storyworld times that row alone.
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
    ap.add_argument("--storyworld-unet")
    ap.add_argument("--only-storyworld", action="store_true")
    args = ap.parse_args()

    import torch
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import load_file

    torch.set_num_threads(args.threads)
    inputs = load_file(os.path.join(args.folder, "inputs.safetensors"))
    check = load_file(os.path.join(args.folder, "check.safetensors"))
    t = torch.tensor(999)

    def best(fn, inner=1):
        fn()  # warm-up
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            times.append((time.perf_counter() - start) / inner)
        return min(times)

    out = {"torch": torch.__version__, "diffusers": diffusers.__version__, "threads": torch.get_num_threads(), "seconds": []}
    with torch.inference_mode():
        if not args.only_storyworld:
            unet = UNet2DConditionModel.from_pretrained(os.path.join(args.folder, "unet"), torch_dtype=torch.float32).eval()
            vae = AutoencoderKL.from_pretrained(os.path.join(args.folder, "vae"), torch_dtype=torch.float32).eval()
            out["attention"] = type(unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.processor).__name__
            ours = unet(inputs["small"], t, encoder_hidden_states=inputs["prompt_embeddings"]).sample
            out["check_max_abs_diff"] = float((ours - check["unet_small"]).abs().max())
            out["seconds"] += [
                best(lambda: unet(inputs["small"], t, encoder_hidden_states=inputs["prompt_embeddings"])),
                best(lambda: unet(inputs["large"], t, encoder_hidden_states=inputs["prompt_embeddings"])),
                best(lambda: vae.decode(inputs["latent"])),
            ]
        if args.storyworld_unet:
            small_unet = UNet2DConditionModel.from_pretrained(args.storyworld_unet, torch_dtype=torch.float32).eval()
            out.setdefault("attention", type(small_unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.processor).__name__)
            run = lambda: small_unet(inputs["storyworld_latents"], t, encoder_hidden_states=inputs["storyworld_prompt"]).sample
            out["storyworld_max_abs_diff"] = float((run() - check["storyworld_unet"]).abs().max())
            # Same repetitions as Storyloom's side: a step takes milliseconds.
            out["seconds"].append(best(run, inner=10))
            from diffusers import StableDiffusionPipeline
            pipe = StableDiffusionPipeline.from_pretrained(os.path.dirname(os.path.abspath(args.storyworld_unet)),
                                                           torch_dtype=torch.float32, safety_checker=None,
                                                           requires_safety_checker=False)
            pipe.set_progress_bar_config(disable=True)
            prompts = inputs["storyworld_pipeline_prompt"]
            items = prompts.shape[0]

            def generate():
                return pipe(prompt_embeds=prompts, num_inference_steps=25, guidance_scale=4.0, output_type="np",
                            generator=[torch.Generator().manual_seed(i + 1) for i in range(items)]).images
            images = torch.from_numpy(generate())
            out["storyworld_pipeline_max_abs_diff"] = float((images - check["storyworld_pipeline_images"]).abs().max())
            out["seconds"].append(best(generate) / items)
    out["peak_mb"] = peak_mb()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
