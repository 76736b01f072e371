#!/usr/bin/env python3
"""Golden fixtures for the Swift Stable Diffusion parity tests (Tests/ModelsTests/SD*.swift).

Writes, from diffusers / torch on tiny random configs:

  Examples/models/tiny-sd/              a complete diffusers SD v1.x folder (model_index.json, unet/, vae/,
                                        text_encoder/, tokenizer/, scheduler/), fp16 weights, random init:
                                        the model the sd-storyworld workflow uses until trained weights exist
  Tests/ModelsTests/Fixtures/sd/
    noise.safetensors + noise.json      torch.randn(shape, generator=manual_seed(s)) for several shapes/seeds,
                                        including sizes < 16 (scalar path) and two draws from one generator
    schedulers.json + .safetensors      each scheduler's timesteps/sigmas and a 6-step sequence on given outputs
    unet_b/, vae_b/                     second tiny configs (linear projection, list heads, legacy VAE names, ...)
    unet.safetensors, vae.safetensors   one UNet forward / VAE decode + encode for the tiny-sd and *_b models
    pipeline.safetensors + .json        StableDiffusionPipeline output images (output_type="np") per scheduler,
                                        and one run from prompt_embeds directly

Run from the repository root:  .venv/bin/python Tools/make_sd_fixtures.py
Everything is seeded; rerunning reproduces the same files for the same library versions.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
import diffusers
import transformers
from diffusers import (AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler,
                       PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel)
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

ROOT = os.path.join("Tests", "ModelsTests", "Fixtures", "sd")
TINY = os.path.join("Examples", "models", "tiny-sd")
CLIP_TOKENIZER = os.path.join("Tests", "ModelsTests", "Fixtures", "clip", "tiny_a_text")

# SD v1.5's scheduler/scheduler_config.json, verbatim.
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "clip_sample": False, "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "trained_betas": None,
}
SCHEDULERS = {"ddim": DDIMScheduler, "pndm": PNDMScheduler, "euler": EulerDiscreteScheduler,
              "dpm++2m": DPMSolverMultistepScheduler}


def versions():
    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "python": sys.version.split()[0]}


def noise_fixtures():
    tensors, cases = {}, []
    for shape, seed in [((16,), 0), ((37,), 1), ((1, 4, 8, 8), 42), ((2, 4, 5, 7), 7), ((3,), 5), ((1, 4, 64, 64), 1234),
                        ((15,), 2 ** 40 + 9)]:
        name = f"randn_{'x'.join(map(str, shape))}_s{seed}"
        tensors[name] = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))
        cases.append({"name": name, "shape": list(shape), "seed": seed})
    # Two draws from one generator: the scalar path's cached second value carries over.
    g = torch.Generator("cpu").manual_seed(11)
    tensors["chain_a"] = torch.randn((3,), generator=g)
    tensors["chain_b"] = torch.randn((20,), generator=g)
    tensors["chain_c"] = torch.randn((5,), generator=g)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(ROOT, "noise.safetensors"))
    with open(os.path.join(ROOT, "noise.json"), "w") as f:
        json.dump({"cases": cases, "chain": {"seed": 11, "shapes": [[3], [20], [5]]}, "versions": versions()}, f, indent=1)


def scheduler_fixtures():
    variants = []
    for kind in SCHEDULERS:
        variants.append((f"{kind}_sd15", kind, dict(SD15_SCHEDULER), 6))
    variants += [
        ("ddim_v_trailing", "ddim", dict(SD15_SCHEDULER, prediction_type="v_prediction", timestep_spacing="trailing",
                                         set_alpha_to_one=True), 5),
        ("ddim_clip_linear", "ddim", {"beta_schedule": "linear", "clip_sample": True, "timestep_spacing": "linspace"}, 4),
        ("pndm_cos_linspace", "pndm", {"beta_schedule": "squaredcos_cap_v2", "skip_prk_steps": True,
                                       "timestep_spacing": "linspace"}, 7),
        ("euler_leading_v", "euler", dict(SD15_SCHEDULER, timestep_spacing="leading", prediction_type="v_prediction"), 5),
        ("euler_trailing", "euler", dict(SD15_SCHEDULER, timestep_spacing="trailing"), 4),
        ("dpm_heun_leading", "dpm++2m", dict(SD15_SCHEDULER, solver_type="heun", timestep_spacing="leading"), 5),
        ("dpm_v_20", "dpm++2m", dict(SD15_SCHEDULER, prediction_type="v_prediction"), 20),
    ]
    tensors, meta = {}, []
    gen = torch.Generator("cpu").manual_seed(99)
    for name, kind, config, steps in variants:
        sched = SCHEDULERS[kind].from_config(config)
        sched.set_timesteps(steps)
        sample = torch.randn((1, 4, 4, 4), generator=gen) * float(sched.init_noise_sigma)
        tensors[f"{name}.sample0"] = sample.clone()
        entry = {"name": name, "kind": kind, "config": config, "steps": steps,
                 "timesteps": [float(t) for t in sched.timesteps],
                 "init_noise_sigma": float(sched.init_noise_sigma)}
        if hasattr(sched, "sigmas") and kind in ("euler", "dpm++2m"):
            entry["sigmas"] = [float(s) for s in sched.sigmas]
        for i, t in enumerate(sched.timesteps):
            scaled = sched.scale_model_input(sample, t)
            # A model output that depends on the input, like a real one would.
            out = 0.3 * scaled + torch.randn(scaled.shape, generator=gen)
            tensors[f"{name}.scaled{i}"] = scaled.clone()
            tensors[f"{name}.output{i}"] = out.clone()
            sample = sched.step(out, t, sample).prev_sample
            tensors[f"{name}.prev{i}"] = sample.clone()
        meta.append(entry)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(ROOT, "schedulers.safetensors"))
    with open(os.path.join(ROOT, "schedulers.json"), "w") as f:
        json.dump({"variants": meta, "versions": versions()}, f, indent=1)


def tiny_unet():
    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=2, norm_num_groups=8)


def unet_b():
    torch.manual_seed(1)
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=3, layers_per_block=1, block_out_channels=(8, 16, 24),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=12, attention_head_dim=(1, 2, 4), use_linear_projection=True, norm_num_groups=4,
        transformer_layers_per_block=(1, 2, 1), flip_sin_to_cos=False, freq_shift=1, norm_eps=1e-6)


def tiny_vae():
    torch.manual_seed(2)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                         block_out_channels=(8, 16, 16),
                         down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                         norm_num_groups=4, sample_size=64, scaling_factor=0.18215)


def vae_b():
    torch.manual_seed(3)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=2, layers_per_block=2,
                         block_out_channels=(8, 12), down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4, sample_size=16,
                         scaling_factor=0.5)


def randomise(model, scale=0.2):
    """Random init makes norms and biases trivial (ones/zeros); perturb every tensor so they matter."""
    g = torch.Generator("cpu").manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale * (p.std() if p.numel() > 1 and p.std() > 0 else 1))
    return model


def legacy_vae_names(state):
    """The pre-0.14 attention names some published VAEs still use (query/key/value/proj_attn)."""
    out = {}
    for k, v in state.items():
        k2 = k.replace(".to_q.", ".query.").replace(".to_k.", ".key.").replace(".to_v.", ".value.").replace(
            ".to_out.0.", ".proj_attn.")
        out[k2] = v
    return out


def model_fixtures(tiny_unet_model, tiny_vae_model):
    out = {}
    g = torch.Generator("cpu").manual_seed(21)
    # UNet: tiny-sd (as loaded from its fp16 folder) and unet_b (fp32 folder).
    b = unet_b().eval()
    randomise(b)
    b.save_pretrained(os.path.join(ROOT, "unet_b"))
    for name, model, hw, ctx, t in [("tiny", tiny_unet_model, 16, 32, 981), ("b", b, 8, 12, 37.5)]:
        sample = torch.randn((2, 4, hw, hw), generator=g)
        enc = torch.randn((2, 7, ctx), generator=g)
        with torch.no_grad():
            y = model(sample, torch.tensor(t), encoder_hidden_states=enc).sample
        out[f"unet_{name}.sample"], out[f"unet_{name}.encoder_hidden_states"], out[f"unet_{name}.output"] = sample, enc, y
        out[f"unet_{name}.timestep"] = torch.tensor([float(t)])
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(ROOT, "unet.safetensors"))

    out = {}
    vb = vae_b().eval()
    randomise(vb)
    os.makedirs(os.path.join(ROOT, "vae_b"), exist_ok=True)
    vb.save_config(os.path.join(ROOT, "vae_b"))
    save_file({k: v.contiguous() for k, v in legacy_vae_names(vb.state_dict()).items()},
              os.path.join(ROOT, "vae_b", "diffusion_pytorch_model.safetensors"))
    for name, model, hw, lat in [("tiny", tiny_vae_model, 16, 4), ("b", vb, 6, 2)]:
        factor = 2 ** (len(model.config.block_out_channels) - 1)
        z = torch.randn((1, lat, hw, hw), generator=g)
        image = torch.rand((2, 3, hw * factor // 2, hw * factor // 2), generator=g) * 2 - 1
        with torch.no_grad():
            decoded = model.decode(z).sample
            mean = model.encode(image).latent_dist.mean
        out[f"vae_{name}.latents"], out[f"vae_{name}.decoded"] = z, decoded
        out[f"vae_{name}.image"], out[f"vae_{name}.posterior_mean"] = image, mean
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(ROOT, "vae.safetensors"))


def tiny_text_encoder():
    vocab = json.load(open(os.path.join(CLIP_TOKENIZER, "vocab.json"), encoding="utf-8"))
    torch.manual_seed(4)
    config = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=2, max_position_embeddings=77, bos_token_id=len(vocab) - 2,
                            eos_token_id=len(vocab) - 1, pad_token_id=len(vocab) - 1, hidden_act="quick_gelu")
    return CLIPTextModel(config)


def write_tiny_sd():
    if os.path.isdir(TINY):
        shutil.rmtree(TINY)
    unet, vae, text = randomise(tiny_unet()), randomise(tiny_vae()), randomise(tiny_text_encoder(), 0.1)
    os.makedirs(os.path.join(TINY, "tokenizer"))
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(CLIP_TOKENIZER, f), os.path.join(TINY, "tokenizer", f))
    tokenizer = CLIPTokenizer(os.path.join(TINY, "tokenizer", "vocab.json"), os.path.join(TINY, "tokenizer", "merges.txt"),
                              pad_token="<|endoftext|>", model_max_length=77)
    tokenizer.save_pretrained(os.path.join(TINY, "tokenizer"))
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                   scheduler=PNDMScheduler.from_config(SD15_SCHEDULER), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.to(torch.float16)
    pipe.save_pretrained(TINY, safe_serialization=True)
    # The reference runs in float32 on the fp16-rounded weights, exactly what the Swift loader sees.
    return StableDiffusionPipeline.from_pretrained(TINY, torch_dtype=torch.float32, safety_checker=None,
                                                   requires_safety_checker=False)


def pipeline_fixtures(pipe):
    prompt, negative = "a red ball rolls to the right on the beach", "blurry"
    out, runs = {}, []
    base = dict(pipe.scheduler.config)
    for kind, cls in SCHEDULERS.items():
        pipe.scheduler = cls.from_config(base)
        g = torch.Generator("cpu").manual_seed(3)
        image = pipe(prompt, negative_prompt=negative, num_inference_steps=4, guidance_scale=7.5, generator=g,
                     output_type="np", height=64, width=64).images
        out[f"image_{kind}"] = torch.from_numpy(image)
        runs.append({"name": f"image_{kind}", "scheduler": kind, "prompt": prompt, "negative_prompt": negative,
                     "steps": 4, "guidance": 7.5, "seed": 3, "height": 64, "width": 64})
    # GILL's entry point: prompt_embeds given directly, no negative (the pipeline encodes ""), 2 images.
    pipe.scheduler = PNDMScheduler.from_config(base)
    embeds = torch.randn((1, 77, 32), generator=torch.Generator("cpu").manual_seed(8))
    g = torch.Generator("cpu").manual_seed(17)
    image = pipe(prompt_embeds=embeds, num_inference_steps=3, guidance_scale=4.0, generator=g, output_type="np",
                 num_images_per_prompt=2).images
    out["prompt_embeds"], out["image_embeds"] = embeds, torch.from_numpy(image)
    runs.append({"name": "image_embeds", "scheduler": "pndm", "steps": 3, "guidance": 4.0, "seed": 17,
                 "images_per_prompt": 2, "height": 64, "width": 64})
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(ROOT, "pipeline.safetensors"))
    with open(os.path.join(ROOT, "pipeline.json"), "w") as f:
        json.dump({"runs": runs, "versions": versions()}, f, indent=1)


def main():
    torch.set_num_threads(1)
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    noise_fixtures()
    scheduler_fixtures()
    pipe = write_tiny_sd()
    model_fixtures(pipe.unet, pipe.vae)
    pipeline_fixtures(pipe)
    with open(os.path.join(ROOT, "README.md"), "w") as f:
        f.write("Generated by Tools/make_sd_fixtures.py (do not edit).\n\n" + json.dumps(versions(), indent=1) + "\n")


if __name__ == "__main__":
    main()
