#!/usr/bin/env python3
"""Stage 2: a small Stable Diffusion (SD v1 recipe) on StoryWorld, conditioned on stage 1's CLIP.

    .venv/bin/python Tools/train/train_sd.py --out runs/sd --clip runs/clip/model [--stage all|vae|unet]

Two sub-stages, each resumable from its own checkpoint (rerun the same command; --restart starts over):
  vae   diffusers AutoencoderKL, 64x64x3 <-> 16x16x4 (two downsamplings), MSE + small KL; the
        latent scaling factor is set to 1/std of the training latents, as SD's 0.18215 was.
  unet  diffusers UNet2DConditionModel on VAE latents, conditioned on the frozen CLIP text encoder's
        last hidden states (77 x width; cross_attention_dim = CLIP text width), 10% caption dropout
        (empty prompt) for classifier-free guidance, cosine (squaredcos_cap_v2) schedule,
        v-prediction by default (--prediction epsilon for the other).
Saves OUT/model/: a diffusers folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/,
scheduler/) whose scheduler is a DDIMScheduler config with clip_sample FALSE: a DDPM config saves
clip_sample=True, which a DDIM scheduler built from it inherits and which ruins samples from
unit-variance latents.
"""
import argparse
import copy
import json
import math
import os
import shutil
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import storyworld_data as sw  # noqa: E402
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel  # noqa: E402
from transformers import CLIPModel, CLIPTextModel  # noqa: E402


def ints(s):
    return [int(x) for x in s.split(",")]


def build_vae(args):
    ch = ints(args.vae_channels)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * len(ch),
                         up_block_types=["UpDecoderBlock2D"] * len(ch), block_out_channels=ch, layers_per_block=1,
                         latent_channels=4, norm_num_groups=min(32, ch[0]), sample_size=args.image_size)


def build_unet(args, text_width):
    ch = ints(args.unet_channels)
    n = len(ch)
    return UNet2DConditionModel(sample_size=args.image_size // 2 ** (len(ints(args.vae_channels)) - 1),
                                in_channels=4, out_channels=4, block_out_channels=ch, layers_per_block=args.unet_layers,
                                down_block_types=["CrossAttnDownBlock2D"] * (n - 1) + ["DownBlock2D"],
                                up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (n - 1),
                                cross_attention_dim=text_width, attention_head_dim=args.heads, norm_num_groups=32)


def noise_scheduler(prediction):
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type=prediction,
                         clip_sample=False)


def sampling_scheduler(prediction):
    # Built from explicit values, not from the DDPM config: clip_sample must be False (see the docstring).
    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type=prediction,
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1, timestep_spacing="trailing")


def train_loop(name, args, step0, steps, modules, opt, ckpt, log, timer, loss_fn, batches, after_step=None):
    step = step0
    while step < steps:
        loss, parts = loss_fn(next(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for m in modules.values() for p in m.parameters() if p.requires_grad], 1.0)
        opt.step()
        step += 1
        if after_step:
            after_step(step)
        if step % args.log_every == 0 or step == steps:
            log.log(step, loss=loss.item(), **parts)
        if step % args.ckpt_every == 0 or step == steps:
            ckpt.save(step, timer.elapsed(), modules, {"opt": opt})
    return step


def stage_vae(args, device, train_u8, val_u8, model_dir):
    vae = build_vae(args).to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr)
    ckpt = sw.Checkpoint(args.out, "vae")
    step, elapsed = 0, 0.0
    if ckpt.exists() and not args.restart:
        step, elapsed, _ = ckpt.load({"vae": vae}, {"opt": opt})
    timer = sw.Timer(elapsed)
    log = sw.LossLog(args.out, "vae", step)
    gen = torch.Generator().manual_seed(args.seed * 31 + step)
    batches = sw.loop_batches(len(train_u8), min(args.vae_batch, len(train_u8)), gen)

    def loss_fn(b):
        x = sw.vae_pixels(train_u8[b.numpy()]).to(device)
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        mse = F.mse_loss(rec, x)
        kl = post.kl().mean() / (x[0].numel())
        return mse + args.kl_weight * kl, {"mse": mse.item(), "kl": kl.item()}

    vae.train()
    step = train_loop("vae", args, step, args.vae_steps, {"vae": vae}, opt, ckpt, log, timer, loss_fn, batches)
    vae.eval()
    with torch.no_grad():
        lat = torch.cat([vae.encode(sw.vae_pixels(train_u8[i:i + 256]).to(device)).latent_dist.sample().cpu()
                         for i in range(0, min(len(train_u8), 2048), 256)])
        vae.register_to_config(scaling_factor=float(1 / lat.std()))
        x = sw.vae_pixels(val_u8).to(device)
        rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
        mse = F.mse_loss((rec + 1) / 2, (x + 1) / 2).item()
    psnr = 10 * math.log10(1 / max(mse, 1e-12))
    vae.cpu().save_pretrained(os.path.join(model_dir, "vae"))
    n = sum(p.numel() for p in vae.parameters())
    return {"steps": step, "wall time": f"{timer.elapsed() / 60:.1f} min", "parameters": f"{n / 1e6:.2f}M",
            "final logged loss": log.last.get("loss"), "held-out PSNR": f"{psnr:.2f} dB ({len(val_u8)} images)",
            "scaling_factor": f"{vae.config.scaling_factor:.4f}"}


def text_states(text_model, tok, texts, device):
    ids = tok(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")["input_ids"].to(device)
    with torch.no_grad():
        return text_model(input_ids=ids).last_hidden_state


def stage_unet(args, device, train, train_u8, val, val_u8, model_dir, text_model, tok):
    vae = AutoencoderKL.from_pretrained(os.path.join(model_dir, "vae")).to(device).eval()
    with torch.no_grad():  # posterior mean and std of every training image, sampled per step
        stats = [vae.encode(sw.vae_pixels(train_u8[i:i + 256]).to(device)).latent_dist for i in range(0, len(train_u8), 256)]
        mean = torch.cat([s.mean for s in stats]).cpu()
        std = torch.cat([s.std for s in stats]).cpu()
    scale = vae.config.scaling_factor
    unet = build_unet(args, text_model.config.hidden_size).to(device)
    ckpt = sw.Checkpoint(args.out, "unet")
    if args.init_unet and not ckpt.exists():
        # Continue a trained UNet (e.g. the committed fp16 one) instead of starting from random weights: its
        # values widened to float32, every key matched; the optimiser and the step count start afresh.
        init = UNet2DConditionModel.from_pretrained(args.init_unet, torch_dtype=torch.float32)
        unet.load_state_dict(init.state_dict(), strict=True)
        print(f"unet initialised from {args.init_unet}", flush=True)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.unet_lr, weight_decay=0.01)
    # An exponential moving average of the weights (what SD and most diffusion recipes sample from): at a
    # constant learning rate the raw weights jitter from step to step; the average is exported.
    modules = {"unet": unet}
    if args.ema > 0:
        modules["ema"] = copy.deepcopy(unet).requires_grad_(False)
    step, elapsed = 0, 0.0
    if ckpt.exists() and not args.restart:
        step, elapsed, _ = ckpt.load(modules, {"opt": opt})
    timer = sw.Timer(elapsed)
    log = sw.LossLog(args.out, "unet", step)
    gen = torch.Generator().manual_seed(args.seed * 131 + step)
    batches = sw.loop_batches(len(train), min(args.batch, len(train)), gen)
    sched = noise_scheduler(args.prediction)
    texts = [p["text"] for p in train]

    def loss_fn(b):
        z = ((mean[b] + std[b] * torch.randn_like(std[b])) * scale).to(device)
        prompts = ["" if torch.rand(()) < args.caption_dropout else texts[i] for i in b.tolist()]
        cond = text_states(text_model, tok, prompts, device)
        noise = torch.randn_like(z)
        t = torch.randint(0, sched.config.num_train_timesteps, (len(b),), device=device)
        noisy = sched.add_noise(z, noise, t)
        target = sched.get_velocity(z, noise, t) if args.prediction == "v_prediction" else noise
        pred = unet(noisy, t, encoder_hidden_states=cond).sample
        return F.mse_loss(pred, target), {}

    @torch.no_grad()
    def update_ema(step):
        # The usual warm-up (1 + n) / (10 + n) keeps early averages from dwelling on the first weights.
        decay = min(args.ema, (1 + step) / (10 + step))
        for e, p in zip(modules["ema"].parameters(), unet.parameters()):
            e.lerp_(p, 1 - decay)

    unet.train()
    step = train_loop("unet", args, step, args.unet_steps, modules, opt, ckpt, log, timer, loss_fn, batches,
                      after_step=update_ema if args.ema > 0 else None)
    final = modules.get("ema", unet).eval()
    n = sum(p.numel() for p in final.parameters())
    return final.cpu(), {"steps": step, "wall time": f"{timer.elapsed() / 60:.1f} min", "parameters": f"{n / 1e6:.2f}M",
                         "final logged loss": log.last.get("loss"),
                         "exported weights": f"EMA, decay {args.ema}" if args.ema > 0 else "the last step's"}


@torch.no_grad()
def evaluate(pipe, clip, val, val_u8, args):
    """CLIP image-image cosine (trained CLIP) of DDIM samples vs the ground truth, on held-out captions."""
    n = min(args.eval_samples, len(val))
    gen = torch.Generator().manual_seed(1234)
    out = pipe([p["text"] for p in val[:n]], num_inference_steps=args.eval_steps, guidance_scale=args.eval_guidance,
               generator=gen, output_type="np", height=args.image_size, width=args.image_size)
    samples = (out.images * 255).round().clip(0, 255).astype("uint8")
    def feats(u8):
        return F.normalize(clip.visual_projection(clip.vision_model(pixel_values=sw.clip_pixels(u8)).pooler_output), dim=-1)
    sim = (feats(samples) * feats(val_u8[:n])).sum(-1)
    shuffled = (feats(samples) * feats(val_u8[:n][::-1].copy())).sum(-1)
    os.makedirs(os.path.join(args.out, "samples"), exist_ok=True)
    from PIL import Image
    for i in range(min(n, 16)):
        Image.fromarray(samples[i]).save(os.path.join(args.out, "samples", f"{i:02d}.png"))
    return {"CLIP similarity to ground truth": f"{sim.mean():.3f} (mismatched pairs: {shuffled.mean():.3f}); {n} held-out captions, "
                                               f"DDIM {args.eval_steps} steps, guidance {args.eval_guidance}"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_common_args(ap, steps=None, batch=64, lr=None)
    ap.add_argument("--clip", required=True, help="stage 1's CLIP folder (its text encoder and tokenizer condition the UNet)")
    ap.add_argument("--stage", choices=["all", "vae", "unet"], default="all")
    ap.add_argument("--stories", type=int, default=20000, help="training stories (first panels are the pairs)")
    ap.add_argument("--val-pairs", type=int, default=500)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--vae-channels", default="32,64,64", help="AutoencoderKL block_out_channels (n blocks: 2^(n-1) downsampling)")
    ap.add_argument("--vae-steps", type=int, default=3000)
    ap.add_argument("--vae-batch", type=int, default=32)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--kl-weight", type=float, default=1e-4)
    ap.add_argument("--unet-channels", default="64,128,128")
    ap.add_argument("--unet-layers", type=int, default=1)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--unet-steps", type=int, default=6000)
    ap.add_argument("--init-unet", default=None,
                    help="a diffusers UNet folder to continue from (e.g. Examples/StoryWorld/models/sd/unet) instead of random "
                         "weights; with --stage unet, OUT/model/vae must hold the VAE it was trained with")
    ap.add_argument("--unet-lr", type=float, default=3e-4)
    ap.add_argument("--ema", type=float, default=0.0,
                    help="export an exponential moving average of the UNet's weights with this decay (e.g. 0.999; 0: the last step's)")
    ap.add_argument("--prediction", choices=["v_prediction", "epsilon"], default="v_prediction")
    ap.add_argument("--caption-dropout", type=float, default=0.1)
    ap.add_argument("--eval-samples", type=int, default=100)
    ap.add_argument("--eval-steps", type=int, default=25)
    ap.add_argument("--eval-guidance", type=float, default=4.0)
    args = ap.parse_args()
    device = sw.setup(args)

    train, val, train_u8, val_u8 = sw.scene_pairs(args)
    print(f"{len(train)} training pairs (world {args.train_seed}), {len(val)} held-out (world {args.val_seed})", flush=True)

    model_dir = os.path.join(args.out, "model")
    os.makedirs(model_dir, exist_ok=True)
    card_path = os.path.join(args.out, "card.json")
    card = json.load(open(card_path)) if os.path.exists(card_path) else {}
    if args.stage in ("all", "vae"):
        card["vae"] = stage_vae(args, device, train_u8, val_u8, model_dir)
        json.dump(card, open(card_path, "w"), indent=1)
    if args.stage in ("all", "unet"):
        clip = CLIPModel.from_pretrained(args.clip).eval()
        # transformers 5: CLIPModel.text_model is a CLIPTextModel (what SD's text_encoder/ holds).
        text_model = copy.deepcopy(clip.text_model).to(device).eval().requires_grad_(False)
        assert isinstance(text_model, CLIPTextModel), type(text_model)
        tok = sw.load_clip_tokenizer(args.clip)
        unet, card["unet"] = stage_unet(args, device, train, train_u8, val, val_u8, model_dir, text_model, tok)
        vae = AutoencoderKL.from_pretrained(os.path.join(model_dir, "vae"))
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_model.cpu(), tokenizer=tok, unet=unet,
                                       scheduler=sampling_scheduler(args.prediction), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        pipe.save_pretrained(model_dir)
        # The tokenizer as Storyloom's CLIPTokenizer reads it: the same files as the CLIP folder.
        for f in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]:
            shutil.copy(os.path.join(args.clip, f), os.path.join(model_dir, "tokenizer", f))
        card["eval"] = evaluate(pipe, clip, val, val_u8, args)
        json.dump(card, open(card_path, "w"), indent=1)
        sched = json.load(open(os.path.join(model_dir, "scheduler", "scheduler_config.json")))
        assert sched["clip_sample"] is False, "scheduler config must not clip samples"
    sw.write_model_card(model_dir, "StoryWorld Stable Diffusion", [
        ("Model", {"recipe": "SD v1: AutoencoderKL + UNet2DConditionModel on the CLIP text encoder's last hidden states",
                   "VAE": f"block_out_channels {args.vae_channels}, 4 latent channels, {args.image_size}px -> {args.image_size // 2 ** (len(ints(args.vae_channels)) - 1)}px latents",
                   "UNet": f"block_out_channels {args.unet_channels}, {args.unet_layers} layer(s) per block, {args.heads} heads, cross_attention_dim = CLIP text width",
                   "text encoder": f"frozen, from {args.clip}",
                   "schedule": f"1000 steps, squaredcos_cap_v2, prediction {args.prediction}; saved as DDIM (trailing spacing, clip_sample false)",
                   "caption dropout": args.caption_dropout}),
        ("Data", {"training world": f"seed {args.train_seed}: {args.stories} stories -> {len(train)} pairs (first story panels)",
                  "held-out world": f"seed {args.val_seed}: {len(val)} pairs", "evaluation seeds (never trained on)": "1-99"}),
        ("VAE training", card.get("vae", {"status": "not run"})),
        ("UNet training", card.get("unet", {"status": "not run"})),
        ("Held-out metrics", card.get("eval", {"status": "not run"})),
        ("Run", {"machine": sw.machine(), "seed": args.seed, "batch": f"VAE {args.vae_batch}, UNet {args.batch}", "command": "python " + " ".join(sys.argv)}),
    ])
    print("saved", model_dir, flush=True)


if __name__ == "__main__":
    main()
