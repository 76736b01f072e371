#!/usr/bin/env python3
"""Stage 1: a small CLIP on StoryWorld (transformers CLIPModel, contrastive loss, 64x64 images).

    .venv/bin/python Tools/train/train_clip.py --out runs/clip [--steps 3000] [--device auto]

Saves OUT/model/: a transformers CLIPModel folder (config.json, model.safetensors) with its
tokenizer (vocab.json + merges.txt in CLIP's format, tokenizer_config.json) and
preprocessor_config.json (resize 64, crop 64, CLIP mean/std) — what Storyloom's CLIPModel.load reads.
Pairs: the panels whose caption describes the whole scene (the first panel of each story).
--hard-negatives adds, for every pair in a batch, one of its caption's binding negatives
(storyworld_text.hard_negatives: two objects' colours, kinds, sizes or positions exchanged, a lone object
moved) to the captions each image is scored against, as NegCLIP does (Yuksekgonul et al. 2023), so the
towers must bind attributes to objects; the held-out metrics then include how often an image prefers its
caption to such a negative.
Resumable: rerun the same command after an interruption; --restart starts over.
"""
import argparse
import os
import random
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import storyworld_data as sw  # noqa: E402
import storyworld_text as st  # noqa: E402
from transformers import CLIPConfig, CLIPModel  # noqa: E402


def tokenize(tok, texts, length=None):
    """ids [N, L] (BOS, BPE, EOS, padded with EOS): padding length does not change CLIP's pooled
    output (causal attention, pooled at the first EOS), so batches use the longest caption."""
    enc = tok(texts, padding="max_length" if length else "longest", max_length=length, truncation=True, return_tensors="pt")
    return enc["input_ids"]


def build_model(vocab_size, tok, args):
    text = dict(vocab_size=vocab_size, hidden_size=args.width, intermediate_size=args.width * 4,
                num_hidden_layers=args.text_layers, num_attention_heads=args.heads, max_position_embeddings=77,
                hidden_act="quick_gelu", projection_dim=args.width, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    vision = dict(hidden_size=args.width, intermediate_size=args.width * 4, num_hidden_layers=args.vision_layers,
                  num_attention_heads=args.heads, image_size=args.image_size, patch_size=args.patch,
                  hidden_act="quick_gelu", projection_dim=args.width)
    return CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=args.width))


@torch.no_grad()
def embed(model, ids, pixels, device, batch=250):
    model.eval()
    t, i = [], []
    for s in range(0, len(ids), batch):
        text = model.text_model(input_ids=ids[s:s + batch].to(device)).pooler_output
        image = model.vision_model(pixel_values=pixels[s:s + batch].to(device)).pooler_output
        t.append(F.normalize(model.text_projection(text), dim=-1).cpu())
        i.append(F.normalize(model.visual_projection(image), dim=-1).cpu())
    model.train()
    return torch.cat(t), torch.cat(i)


def features(model, ids, pixels):
    """Normalised projected text features of `ids` and image features of `pixels` (either may be None)."""
    t = F.normalize(model.text_projection(model.text_model(input_ids=ids).pooler_output), dim=-1) if ids is not None else None
    i = F.normalize(model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output), dim=-1) if pixels is not None else None
    return t, i


def negatives_of(pairs):
    """(texts, owner) of every pair's binding negatives, flattened: owner[n] is the pair negative n belongs to."""
    texts, owner = [], []
    for k, p in enumerate(pairs):
        for text in st.hard_negatives(p["text"], p["scene"]):
            texts.append(text)
            owner.append(k)
    return texts, torch.tensor(owner, dtype=torch.long)


@torch.no_grad()
def binding_accuracy(model, tok, pairs, pixels, device):
    """How often an image's similarity to its own caption beats one binding negative of it (drawn with a
    fixed seed): {"one object": (accuracy, n), "several objects": (accuracy, n)}. 0.5 is chance."""
    rng = random.Random(0)
    keep, negs = [], []
    for k, p in enumerate(pairs):
        options = st.hard_negatives(p["text"], p["scene"])
        if options:
            keep.append(k)
            negs.append(rng.choice(options))
    length = max(tokenize(tok, [pairs[k]["text"] for k in keep] + negs).shape[1], 1)
    pos_ids = tokenize(tok, [pairs[k]["text"] for k in keep], length)
    neg_ids = tokenize(tok, negs, length)
    model.eval()
    wins = []
    for s in range(0, len(keep), 250):
        b = keep[s:s + 250]
        t, i = features(model, pos_ids[s:s + 250].to(device), pixels[b].to(device))
        n, _ = features(model, neg_ids[s:s + 250].to(device), None)
        wins += ((t * i).sum(-1) > (n * i).sum(-1)).cpu().tolist()
    model.train()
    out = {}
    for name, test in (("one object", lambda c: c == 1), ("several objects", lambda c: c > 1)):
        w = [won for k, won in zip(keep, wins) if test(len(pairs[k]["scene"]["objects"]))]
        out[name] = (sum(w) / max(len(w), 1), len(w))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_common_args(ap, steps=3000, batch=256, lr=5e-4)
    ap.add_argument("--stories", type=int, default=20000, help="training stories (first panels are the pairs)")
    ap.add_argument("--dialogues", type=int, default=0, help="training dialogues (their captions train the BPE only)")
    ap.add_argument("--val-pairs", type=int, default=500, help="held-out pairs for recall@k")
    ap.add_argument("--merges", type=int, default=300, help="BPE merges (vocabulary = 514 + merges)")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--text-layers", type=int, default=4)
    ap.add_argument("--vision-layers", type=int, default=4)
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--hard-negatives", action="store_true",
                    help="score each image against one binding negative of its caption too (see above)")
    args = ap.parse_args()
    device = sw.setup(args)
    timer_start = sw.Timer()

    train_dir = sw.make_world(os.path.join(args.data, f"world-{args.train_seed}-{args.stories}-{args.dialogues}"),
                              args.train_seed, args.stories, args.dialogues, "train")
    n_val = args.val_pairs
    val_dir = sw.make_world(os.path.join(args.data, f"world-{args.val_seed}-{n_val}-0"),
                            args.val_seed, n_val, 0, "validation")
    all_train = sw.panels(train_dir)
    train = [p for p in all_train if sw.describes_scene(p)]
    val = [p for p in sw.panels(val_dir) if sw.describes_scene(p)][:n_val]
    print(f"{len(train)} training pairs (world {args.train_seed}), {len(val)} held-out pairs (world {args.val_seed})", flush=True)

    model_dir = os.path.join(args.out, "model")
    ckpt = sw.Checkpoint(args.out, "clip")
    resume = ckpt.exists() and not args.restart
    if not resume or not os.path.exists(os.path.join(model_dir, "vocab.json")):
        # Every caption of the training world (story sentences too: SD prompts join them).
        vocab_size = sw.train_clip_bpe(sorted({p["text"] for p in all_train}), args.merges, model_dir)
    sw.save_clip_processor(model_dir, args.image_size)
    tok = sw.load_clip_tokenizer(model_dir)
    vocab_size = len(tok)

    ids = tokenize(tok, [p["text"] for p in train])
    neg_texts, neg_owner = negatives_of(train) if args.hard_negatives else ([], torch.zeros(0, dtype=torch.long))
    if neg_texts:
        length = max(ids.shape[1], tokenize(tok, neg_texts).shape[1])
        ids, neg_ids = tokenize(tok, [p["text"] for p in train], length), tokenize(tok, neg_texts, length)
        # Each pair's negatives as a range of neg_ids (negatives_of lists them pair by pair).
        counts = torch.bincount(neg_owner, minlength=len(train))
        neg_start = torch.cumsum(counts, 0) - counts
        print(f"{len(neg_texts)} binding negatives for {int((counts > 0).sum())} of {len(train)} pairs", flush=True)
    pixels = sw.clip_pixels(sw.load_images([p["image"] for p in train], os.path.join(args.data, f"clip-train-{args.train_seed}.npy")))
    val_ids = tokenize(tok, [p["text"] for p in val])
    val_pixels = sw.clip_pixels(sw.load_images([p["image"] for p in val]))
    print(f"vocabulary {vocab_size}, caption length {ids.shape[1]} tokens", flush=True)

    model = build_model(vocab_size, tok, args).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    sched = sw.warmup_cosine(opt, args.warmup, args.steps)
    step, elapsed = 0, 0.0
    if resume:
        step, elapsed, _ = ckpt.load({"model": model}, {"opt": opt, "sched": sched})
    timer = sw.Timer(elapsed)
    log = sw.LossLog(args.out, "clip", step)
    gen = torch.Generator().manual_seed(args.seed * 7919 + step)
    batches = sw.loop_batches(len(train), min(args.batch, len(train)), gen)
    model.train()
    while step < args.steps:
        b = next(batches)
        if neg_texts:
            # One negative per pair that has any: scored by every image, the target still its own caption.
            has = b[counts[b] > 0]
            pick = neg_start[has] + (torch.rand(len(has), generator=gen) * counts[has]).long()
            t, i = features(model, torch.cat([ids[b], neg_ids[pick]]).to(device), pixels[b].to(device))
            scale = model.logit_scale.exp()
            target = torch.arange(len(b), device=device)
            loss = (F.cross_entropy(scale * i @ t.T, target) + F.cross_entropy(scale * t[:len(b)] @ i.T, target)) / 2
        else:
            loss = model(input_ids=ids[b].to(device), pixel_values=pixels[b].to(device), return_loss=True).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        if step % args.log_every == 0 or step == args.steps:
            log.log(step, loss=loss.item(), logit_scale=model.logit_scale.exp().item(), lr=sched.get_last_lr()[0])
        if step % args.ckpt_every == 0 or step == args.steps:
            ckpt.save(step, timer.elapsed(), {"model": model}, {"opt": opt, "sched": sched})

    t, i = embed(model, val_ids, val_pixels, device)
    metrics = sw.recall_at(t @ i.T)
    metrics["image→text recall@1"] = sw.recall_at(i @ t.T)["recall@1"]
    binding = binding_accuracy(model, tok, val, val_pixels, device)
    print("held-out", metrics, "binding", binding, flush=True)
    model.cpu().save_pretrained(model_dir)
    for f in os.listdir(model_dir):
        if f == "generation_config.json":
            os.remove(os.path.join(model_dir, f))
    sw.write_model_card(model_dir, "StoryWorld CLIP", [
        ("Model", {"architecture": "transformers CLIPModel", "parameters": f"{n_params / 1e6:.2f}M",
                   "text": f"{args.text_layers} layers, width {args.width}, {args.heads} heads, vocabulary {vocab_size} (CLIP-format BPE, {args.merges} merges), 77 positions",
                   "vision": f"{args.vision_layers} layers, width {args.width}, patch {args.patch}, {args.image_size}x{args.image_size} images",
                   "projection": args.width}),
        ("Data", {"training world": f"seed {args.train_seed}: {args.stories} stories, {args.dialogues} dialogues -> {len(train)} pairs (first story panels)",
                  "held-out world": f"seed {args.val_seed}: {len(val)} pairs", "evaluation seeds (never trained on)": "1-99"}),
        ("Training", {"loss": "CLIP symmetric contrastive (InfoNCE), learned logit scale"
                      + (", each image also scored against one binding negative of its caption (NegCLIP-style)" if neg_texts else ""),
                      "steps": step,
                      "batch": args.batch, "optimizer": f"AdamW lr {args.lr}, wd 0.1, {args.warmup} warm-up steps, cosine decay",
                      "seed": args.seed, "wall time": f"{timer.elapsed() / 60:.1f} min (this and earlier runs)",
                      "machine": sw.machine(), "final logged loss": log.last.get("loss"),
                      "command": "python " + " ".join(sys.argv)}),
        ("Held-out metrics", {f"text→image {k}": f"{v:.3f}" for k, v in metrics.items() if not k.startswith("image")}
         | {"image→text recall@1": f"{metrics['image→text recall@1']:.3f}",
            "note": f"among {len(val)} held-out pairs (a duplicate caption+image pair ties, which counts as a hit)"}
         | {f"binding, {k}": f"{a:.3f} (n {n}): the image prefers its caption to one binding negative of it (chance 0.5)"
            for k, (a, n) in binding.items()}),
    ])
    print("saved", model_dir, f"in {(sw.Timer().start - timer_start.start) / 60:.1f} min this run", flush=True)


if __name__ == "__main__":
    main()
