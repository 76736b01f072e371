#!/usr/bin/env python3
"""Stage 4d: GILL's retrieval heads alone, under GILL's own retrieval protocol (issue #11).

    .venv/bin/python Tools/train/train_retrieval.py --out runs/gill-retrieval --init Examples/StoryWorld/models/gill \
        --export Examples/StoryWorld/models/gill

FROMAGe's and GILL's contextual retrieval on VIST ranks every image but those the context has shown ("don't
retrieve previously seen images"); Storyloom's `retrieve` does the same with `exclude_context: true`. The story
stage (train_gill_story.py) instead used the story's other four panels as hard negatives, so its heads spent
their capacity telling the last panel from the four earlier ones, which GILL's protocol never asks.

This stage retrains only the two retrieval heads and their scale — `ret_text_hidden_fcs.0` (on the [IMG0] last
hidden state), `visual_fc` (on CLIP's pooled image feature) and `logit_scale` — starting from the GILL folder
`--init`. Everything that feeds them is frozen (LLM, [IMG] rows, visual prefix, CLIP), and nothing else reads
them (captions, the GILLMapper's generation and the decision head do not), so this stage changes retrieval
scores alone. Because the inputs are frozen, each training context's [IMG0] state is computed once.

Training contexts, per training story of the training worlds (`--train-seeds`; laid out as GILLContext.story(.gill)
builds them, train_gill_story's `context_segments`): captions 1..k with images 1..k-1 (k = 2..5), captions 1..5,
and the first caption alone, drawn as often as `--context-weights` says; target panel k. Loss: InfoNCE of each
context against every panel of the batch's stories except the panels its story has before panel k (as
`exclude_context` does at evaluation), and the symmetric image-to-context term over the batch's targets; AdamW,
cosine schedule.

Held-out (validation world, default seed 900: its 500 stories as five pools of 100 stories = 500 panels, averaged):
the last panel from captions + images
under GILL's protocol (and among all panels, as before), from 5 captions, and from the first caption (the
first panel): recall@1/@5 and the largest share of stories with one image in their top 3. The trained tensors go to OUT/heads.safetensors (float32);
`--export FOLDER` writes FOLDER/gill.safetensors with the three retrained tensors in float16 and every other tensor unchanged.
"""
import argparse
import json
import os
import random
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import storyworld_data as sw  # noqa: E402
from train_gill import Batcher  # noqa: E402
from train_gill_story import Encoder, context_segments, features, img_block, load_gill_folder, stories_of  # noqa: E402

HEADS = ("ret_text_hidden_fcs.", "visual_fc.", "logit_scale")
# (mode, k) of every training context: captions + images for k = 2..5, five captions, the first caption alone.
CONTEXTS = [("images", 2), ("images", 3), ("images", 4), ("images", 5), ("captions", 5), ("last", 1)]


@torch.no_grad()
def img0_states(batcher, enc, bos, stories, sq, img_ids, contexts, chunk=50):
    """[IMG0] last hidden state of each story's contexts: [S, len(contexts), E]."""
    out = []
    for i in range(0, len(stories), chunk):
        seqs = [context_segments(enc, bos, stories[j][0], sq[j], mode, k, img_ids)
                for j in range(i, min(i + chunk, len(stories))) for mode, k in contexts]
        _, h, _ = img_block(batcher, seqs)
        out.append(h[:, 0].reshape(-1, len(contexts), h.shape[-1]))
        if (i // chunk) % 20 == 0:
            print(f"[IMG0] states {i + len(out[-1])}/{len(stories)}", flush=True)
    return torch.cat(out)


@torch.no_grad()
def evaluate(gill, h, raw):
    """Retrieval of each story's last panel (and of the first panel from the first caption) among all panels.
    h: [S, 3, E] states of (captions+images k=5, captions k=5, first caption k=1); raw: [S, 5, C]."""
    s = raw.shape[0]
    pool = F.normalize(gill.visual_fc(raw.reshape(-1, raw.shape[-1])), dim=-1)
    res = {}
    # (name, which state of h, the panel to find, how many panels the context showed)
    for name, src, panel, shown in [("images_unseen", 0, 4, 4), ("images_all", 0, 4, 0), ("captions_unseen", 1, 4, 4),
                                    ("first_caption", 2, 0, 0)]:
        q = F.normalize(gill.ret_text_hidden_fcs[0](h[:, src]), dim=-1)
        sim = q @ pool.T
        for j in range(s):   # GILL's protocol: the panels the context showed are not candidates
            sim[j, j * 5:j * 5 + shown] = -float("inf")
        truth = torch.arange(s) * 5 + panel
        rank = (sim > sim[torch.arange(s), truth][:, None]).sum(1)
        top3 = sim.topk(3, dim=1).indices.reshape(-1)
        res[name] = {"recall@1": round(float((rank < 1).float().mean()), 3), "recall@5": round(float((rank < 5).float().mean()), 3),
                     "mean_rank": round(float(rank.float().mean() + 1), 1),
                     "top3_max_share": round(torch.bincount(top3, minlength=pool.shape[0]).max().item() / s, 3)}
    return res


def evaluate_pools(gill, h, raw, stories=100):
    """`evaluate` over consecutive pools of `stories` stories (500 panels each, issue #11's measure), averaged:
    five pools of the validation world's 500 stories read the heads with a fifth of one pool's spread."""
    stories = min(stories, len(h))   # fewer validation stories than a pool: one pool of them all
    parts = [evaluate(gill, h[i:i + stories], raw[i:i + stories]) for i in range(0, len(h) - stories + 1, stories)]
    return {name: {"recall@1": round(sum(p[name]["recall@1"] for p in parts) / len(parts), 4),
                   "recall@5": round(sum(p[name]["recall@5"] for p in parts) / len(parts), 4),
                   "mean_rank": round(sum(p[name]["mean_rank"] for p in parts) / len(parts), 2),
                   "top3_max_share": max(p[name]["top3_max_share"] for p in parts),
                   "recall@1_per_pool": [p[name]["recall@1"] for p in parts]} for name in parts[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_common_args(ap, steps=3000, batch=128, lr=1e-3)
    ap.add_argument("--init", default=os.path.join(sw.REPO, "Examples", "StoryWorld", "models", "gill"), help="GILL folder to start from")
    ap.add_argument("--stories", type=int, default=8000, help="stories of each training world")
    ap.add_argument("--train-seeds", type=int, nargs="+", default=None,
                    help="training worlds (>= 1000; default: --train-seed alone), their stories pooled")
    ap.add_argument("--context-weights", type=float, nargs=len(CONTEXTS), default=None, metavar="W",
                    help="how often each training context is drawn, in CONTEXTS' order: captions + images k = 2, 3, 4, 5, "
                    "five captions, the first caption (default: all alike)")
    ap.add_argument("--val-stories", type=int, default=500,
                    help="validation stories, read in pools of 100 (500 panels each) and averaged")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--export", default=None, help="GILL folder to write gill.safetensors into (float16), from the last step")
    args = ap.parse_args()
    device = sw.setup(args)
    t0 = time.time()

    args.train_seeds = args.train_seeds or [args.train_seed]
    train_dirs = [sw.make_world(os.path.join(args.data, f"world-{s}-{args.stories}-0"), s, args.stories, 0, "train")
                  for s in args.train_seeds]
    n_val = max(500, args.val_stories)   # the validation world other stages read: its first stories
    val_dir = sw.make_world(os.path.join(args.data, f"world-{args.val_seed}-{n_val}-0"), args.val_seed, n_val, 0, "validation")
    train = [stories_of(d) for d in train_dirs]
    val = stories_of(val_dir)[:args.val_stories]

    tok, img_ids, gill = load_gill_folder(args.init, device)
    gill.eval().requires_grad_(False)
    own = [p for n, p in gill.named_parameters() if n.startswith(HEADS)]
    for p in own:
        p.requires_grad_(True)
    batcher = Batcher(gill, img_ids, tok.pad_token_id, device)
    enc = Encoder(tok)

    raw, h = [], []
    for seed, stories in zip(args.train_seeds, train):
        r, sq = features(gill.clip, stories, os.path.join(args.data, f"gill-story-features-{seed}-{args.stories}.pt"), device)
        raw.append(r)
        h.append(img0_states(batcher, enc, tok.bos_token_id, stories, sq, img_ids, CONTEXTS))
    raw, h, train = torch.cat(raw), torch.cat(h), [s for stories in train for s in stories]
    vraw, vsq = features(gill.clip, val, None, device)
    vh = img0_states(batcher, enc, tok.bos_token_id, val, vsq, img_ids, [("images", 5), ("captions", 5), ("last", 1)])
    print(f"{len(train)} training stories, {len(val)} held-out; {sum(p.numel() for p in own) / 1e3:.1f}K trained; "
          f"features and states in {time.time() - t0:.0f} s", flush=True)

    evals = [{"step": 0, **evaluate_pools(gill, vh, vraw)}]
    print("held-out at step 0:", json.dumps(evals[-1]), flush=True)
    opt = torch.optim.AdamW(own, lr=args.lr, weight_decay=args.weight_decay)
    sched = sw.warmup_cosine(opt, 50, args.steps)
    rng = random.Random(args.seed)
    # The context's target panel (0-based) is also how many of its story's panels it showed before it.
    target_panel = torch.tensor([k - 1 for _, k in CONTEXTS])
    own_story, cols = torch.arange(args.batch), torch.arange(5)
    t1 = time.time()
    for step in range(1, args.steps + 1):
        stories = torch.tensor(rng.sample(range(len(train)), args.batch))
        kinds = torch.tensor(rng.choices(range(len(CONTEXTS)), weights=args.context_weights, k=args.batch) if args.context_weights
                             else [rng.randrange(len(CONTEXTS)) for _ in range(args.batch)])
        q = F.normalize(gill.ret_text_hidden_fcs[0](h[stories, kinds]), dim=-1)                  # [B, R]
        imgs = F.normalize(gill.visual_fc(raw[stories].reshape(-1, raw.shape[-1])), dim=-1)     # [B*5, R]
        logits = q @ imgs.T * gill.logit_scale.exp()
        panel = target_panel[kinds]
        # The panels a context showed (its story's panels before k) are not candidates.
        shown = cols[None, :] < panel[:, None]                                                    # [B, 5]
        mask = torch.zeros_like(logits, dtype=torch.bool)
        mask.view(args.batch, args.batch, 5)[own_story, own_story] = shown
        logits = logits.masked_fill(mask, -float("inf"))
        label = own_story * 5 + panel
        t2i = F.cross_entropy(logits, label)
        i2t = F.cross_entropy(logits[:, label].T, own_story)
        loss = (t2i + i2t) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % args.log_every == 0:
            print(f"step {step} loss {loss.item():.4f} t2i {t2i.item():.4f} scale {gill.logit_scale.exp().item():.1f}", flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            evals.append({"step": step, **evaluate_pools(gill, vh, vraw)})
            print(f"held-out at step {step}:", json.dumps(evals[-1]), flush=True)
    train_s = time.time() - t1
    summary = {"args": vars(args), "evals": evals, "train_seconds": round(train_s, 1), "total_seconds": round(time.time() - t0, 1)}
    json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"), indent=1)
    print(f"trained {args.steps} steps in {train_s:.0f} s; total {time.time() - t0:.0f} s", flush=True)
    trained = {n: p.detach().contiguous() for n, p in gill.named_parameters() if n.startswith(HEADS)}
    save_file(trained, os.path.join(args.out, "heads.safetensors"))
    if args.export:
        path = os.path.join(args.export, "gill.safetensors")
        stored = load_file(path)
        assert set(trained) <= set(stored), set(trained) - set(stored)
        for n, p in trained.items():
            stored[n] = p.to(stored[n].dtype).reshape(stored[n].shape).contiguous()
        save_file(stored, path, metadata={"format": "pt"})
        print(f"wrote {path} ({', '.join(sorted(trained))} retrained)")


if __name__ == "__main__":
    main()
