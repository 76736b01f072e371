#!/usr/bin/env python3
"""GILL's decision head alone, retrained on story contexts from the committed StoryWorld GILL (issue #11).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python Tools/train/train_decision.py --out runs/decision --threads 2

Starts from a Storyloom GILL folder (default Examples/StoryWorld/models/gill, read back as
Tools/record_storyworld_outputs.py reads it: GILLReference + gill.safetensors, its opt/ and clip/, its sd/)
and trains only `decision.1` (Linear on the [IMG0] last hidden state); everything else stays frozen.

Labels are the `decision-oracle` step's rule in the quickstart's setting (Workflows/quickstart.yaml), per
story of a world, the stories taken in groups of --group (the quickstart's world has 24):
  - context as the `decide` step reads it with `context: captions+images` and the default `gill` layout
    (GILLPrompt.vist): BOS, caption 1, image 1 squashed to 224x224, ..., caption 4, image 4, caption 5,
    then the forced [IMG0..7] block; the features are the [IMG0] last hidden state;
  - retrieved: the top image by GILL's retrieval score (the same context through ret_text_hidden_fcs vs
    visual_fc of every panel of the group's other stories: `retrieve` with exclude_same_entry);
  - generated: SD (the folder's sd/, DDIM, --sd-steps, guidance --guidance, "" as the unconditional
    prompt) from the GILLMapper output of the same context;
  - label: generate (class 0) when the generated image's CLIP image similarity (--clip, the quickstart's
    scoring model) to the true last panel is higher than the retrieved one's, else retrieve (class 1);
    ties go to retrieval, as in DecisionOracleStep.
Class order is GILL's (idx2dec: 0 = gen, 1 = ret). Loss: class-balanced cross-entropy, full batch, AdamW.
The number of steps is chosen on the --select-seed world (900-999); the held-out figure is reported on
the --val-seed world (900-999, a different one); training worlds are >= 1000. Writes OUT/decision.safetensors
(decision.1.weight/bias, float32), OUT/report.json and, with --export, the head into FOLDER/gill.safetensors
(fp16, other tensors unchanged) with "decision_classes": ["gen", "ret"] in config.json.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import storyworld_data as sw  # noqa: E402
from record_storyworld_outputs import load_clip, load_gill, pixel_values  # noqa: E402
from diffusers import StableDiffusionPipeline  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(REPO, "Examples", "StoryWorld", "models")
GEN, RET = 0, 1   # GILL's idx2dec


def stories_of(folder):
    out = []
    for e in sw.load_collection(folder):
        if e["kind"] == "story" and len(e["panels"]) >= 2:
            out.append({"id": e["id"], "captions": [p["text"] for p in e["panels"]],
                        "images": [os.path.join(folder, p["image"]) for p in e["panels"]]})
    return out


@torch.no_grad()
def label_world(folder, gill, tok, processor, pipe, clip, clip_proc, args, cache):
    """Features ([IMG0] hidden), oracle labels and the similarities for every story of a world; cached."""
    if os.path.exists(cache):
        return torch.load(cache)
    stories = stories_of(folder)
    img_ids = gill.args["gen_token_idx"]
    uncond = pipe.text_encoder(pipe.tokenizer([""], padding="max_length", max_length=77, return_tensors="pt").input_ids).last_hidden_state
    rec = {"h0": [], "label": [], "s_gen": [], "s_ret": [], "old_p": [], "ids": []}
    t0 = time.time()
    for g in range(0, len(stories), args.group):
        group = stories[g:g + args.group]
        if len(group) < 2:
            break
        pil = [[Image.open(p).convert("RGB") for p in s["images"]] for s in group]
        # The pool: every panel of the group (gill-embed on images), with its story index.
        pool_imgs = [im for ims in pil for im in ims]
        owner = torch.tensor([i for i, ims in enumerate(pil) for _ in ims])
        pool = F.normalize(gill.image_retrieval_embedding(pixel_values(processor, pool_imgs)), dim=-1)
        h0s, rets, gens = [], [], []
        for s, ims in zip(group, pil):
            caps = s["captions"]
            parts = [gill.embed_ids([tok.bos_token_id])]
            for i, c in enumerate(caps):
                parts.append(gill.embed_ids(tok(c, add_special_tokens=False)["input_ids"]))
                if i < len(caps) - 1:   # GILLPrompt.vist: each earlier caption's image after it, squashed
                    parts.append(gill.visual_prefix(pixel_values(processor, [ims[i].resize((224, 224), Image.BICUBIC)]))[0])
            ctx = torch.cat(parts)
            start = ctx.shape[0]
            embs = torch.cat([ctx, gill.embed_ids(img_ids)])
            _, hidden = gill.run(embs)
            h = hidden[start:start + len(img_ids)]
            h0s.append(h[0])
            rets.append(F.normalize(gill.ret_text_hidden_fcs[0](h[0]), dim=-1))
            gens.append(gill.gen_text_hidden_fcs[0](h[None], embs[start:start + len(img_ids)][None])[0])
        sims = torch.stack(rets) @ pool.T
        sims[owner[None, :] == torch.arange(len(group))[:, None]] = -2   # exclude_same_entry
        top = sims.argmax(1).tolist()
        images = pipe(prompt_embeds=torch.stack(gens), negative_prompt_embeds=uncond.expand(len(group), -1, -1),
                      num_inference_steps=args.sd_steps, guidance_scale=args.guidance, output_type="np",
                      generator=torch.Generator().manual_seed(args.seed * 1000 + g)).images
        generated = [Image.fromarray((im * 255).round().clip(0, 255).astype("uint8")) for im in images]
        truth = [ims[-1] for ims in pil]
        retrieved = [pool_imgs[t] for t in top]
        px = pixel_values(clip_proc, truth + retrieved + generated)
        feats = F.normalize(clip.visual_projection(clip.vision_model(pixel_values=px).pooler_output), dim=-1)
        n = len(group)
        gt, rt, gn = feats[:n], feats[n:2 * n], feats[2 * n:]
        s_ret, s_gen = (gt * rt).sum(-1), (gt * gn).sum(-1)
        h0 = torch.stack(h0s)
        rec["h0"].append(h0)
        rec["s_gen"] += s_gen.tolist()
        rec["s_ret"] += s_ret.tolist()
        rec["label"] += [GEN if a > b else RET for a, b in zip(s_gen.tolist(), s_ret.tolist())]
        rec["old_p"].append(F.softmax(gill.decision(h0), -1))
        rec["ids"] += [s["id"] for s in group]
        print(f"{os.path.basename(folder)}: {len(rec['label'])}/{len(stories)} labelled, retrieve wins "
              f"{sum(1 for y in rec['label'] if y == RET)}, {time.time() - t0:.0f} s", flush=True)
    rec["h0"], rec["old_p"] = torch.cat(rec["h0"]), torch.cat(rec["old_p"])
    rec["label"] = torch.tensor(rec["label"])
    rec["seconds"] = time.time() - t0
    torch.save(rec, cache)
    return rec


def old_predictions(rec, old_classes):
    """The committed head's choice in GILL's class order."""
    gen_idx = old_classes.index("gen")
    return torch.where(rec["old_p"][:, gen_idx] > rec["old_p"][:, 1 - gen_idx], GEN, RET)


def accuracy(pred, y):
    return float((pred == y).float().mean())


def majority(y):
    p = float((y == RET).float().mean())
    return max(p, 1 - p)


def last_scenes(folder):
    """{story id: scene graph of its last panel} (what the oracle's truth shows)."""
    return {e["id"]: e["panels"][-1]["metadata"] for e in sw.load_collection(folder) if e["kind"] == "story"}


def probe(tr, se, va, lambdas=(0.1, 1, 10, 100, 1000)):
    """How far any linear head on these features can go: L2-regularised logistic regression on standardised
    [IMG0] states (LBFGS, to convergence), the strength chosen on the select world, accuracy on val."""
    mu, sd = tr["h0"].mean(0), tr["h0"].std(0) + 1e-6
    X, y = ((tr["h0"] - mu) / sd).double(), tr["label"].double()
    best = None
    for lam in lambdas:
        w = torch.zeros(X.shape[1], dtype=torch.double, requires_grad=True)
        b = torch.zeros(1, dtype=torch.double, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=500)

        def closure():
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(X @ w + b, y) + lam / len(y) * (w * w).sum()
            loss.backward()
            return loss
        opt.step(closure)
        with torch.no_grad():
            acc = {k: accuracy(((((d["h0"] - mu) / sd).double() @ w + b) > 0).long(), d["label"])
                   for k, d in (("train", tr), ("select", se), ("val", va))}
        if best is None or acc["select"] > best["accuracy"]["select"]:
            best = {"l2": lam, "accuracy": acc}
    return best


def scene_rules(tr, va):
    """The best any rule on the truth's scene alone can do: per value of a property of the last panel (object
    count, background), the class the training labels favour; its accuracy on val."""
    out = {}
    for name, key in (("objects", lambda m: len(m["objects"])), ("background", lambda m: m["background"])):
        groups = {}
        for scene, yv in zip(tr["scenes"], tr["label"].tolist()):
            groups.setdefault(key(scene), []).append(yv)
        rule = {k: (RET if np.mean(v) > 0.5 else GEN) for k, v in groups.items()}
        pred = torch.tensor([rule.get(key(scene), GEN) for scene in va["scenes"]])
        out[name] = {"retrieve_rate": {str(k): round(float(np.mean(v)), 3) for k, v in sorted(groups.items())},
                     "val_accuracy": accuracy(pred, va["label"])}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=None, help="folder for generated worlds (default OUT/data)")
    ap.add_argument("--gill", default=os.path.join(MODELS, "gill"))
    ap.add_argument("--clip", default=os.path.join(MODELS, "clip"), help="the scoring CLIP (the quickstart's clip model)")
    ap.add_argument("--train-seeds", type=int, nargs="+", default=[1000, 1001, 1002], help="training worlds (>= 1000)")
    ap.add_argument("--train-stories", type=int, default=480, help="stories per training world")
    ap.add_argument("--select-seed", type=int, default=900, help="validation world for choosing the steps")
    ap.add_argument("--select-stories", type=int, default=240)
    ap.add_argument("--val-seed", type=int, default=901, help="validation world for the held-out figure")
    ap.add_argument("--val-stories", type=int, default=240)
    ap.add_argument("--group", type=int, default=24, help="stories per retrieval pool (the quickstart's world has 24)")
    ap.add_argument("--sd-steps", type=int, default=25)
    ap.add_argument("--guidance", type=float, default=4.0)
    ap.add_argument("--max-steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--noise-check", action="store_true",
                    help="label the val world again with the next generation seed and report how often the oracle agrees with itself")
    ap.add_argument("--export", action="store_true", help="write the head into --gill's gill.safetensors and config.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.select_seed == args.val_seed:
        sys.exit("error: --select-seed and --val-seed must differ (steps are chosen on one, reported on the other)")
    args.data = args.data or os.path.join(args.out, "data")
    os.makedirs(args.data, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)   # the label caches go there as each world finishes
    t_start = time.time()

    gill, tok, processor = load_gill(args.gill)
    old_classes = gill.args.get("decision_classes", ["gen", "ret"])
    clip, clip_proc = load_clip(args.clip)
    pipe = StableDiffusionPipeline.from_pretrained(os.path.join(args.gill, "sd"), safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)

    worlds, folders = {}, {}
    for role, seed, n, check in [(f"train-{s}", s, args.train_stories, "train") for s in args.train_seeds] + [
                                 ("select", args.select_seed, args.select_stories, "validation"),
                                 ("val", args.val_seed, args.val_stories, "validation")]:
        folder = sw.make_world(os.path.join(args.data, f"world-{seed}-{n}"), seed, n, 0, check)
        folders[role] = folder
        worlds[role] = label_world(folder, gill, tok, processor, pipe, clip, clip_proc, args,
                                   os.path.join(args.out, f"labels-{role.split('-')[0]}-{seed}-{n}-g{args.group}-s{args.sd_steps}.pt"))
    noise = None
    if args.noise_check:   # the same val stories, pools and features; only SD's noise differs
        alt = argparse.Namespace(**{**vars(args), "seed": args.seed + 1})
        again = label_world(folders["val"], gill, tok, processor, pipe, clip, clip_proc, alt,
                            os.path.join(args.out, f"labels-val-{args.val_seed}-{args.val_stories}-g{args.group}-s{args.sd_steps}-seed{alt.seed}.pt"))
        noise = {"generation_seeds": [args.seed, alt.seed], "label_agreement": accuracy(again["label"], worlds["val"]["label"]),
                 "generate_wins": [int((worlds["val"]["label"] == GEN).sum()), int((again["label"] == GEN).sum())]}
    label_seconds = time.time() - t_start
    for role, folder in folders.items():   # story ids repeat across worlds: look each up in its own
        scenes = last_scenes(folder)
        worlds[role]["scenes"] = [scenes[sid] for sid in worlds[role]["ids"]]

    parts = [worlds.pop(f"train-{s}") for s in args.train_seeds]
    worlds = {"train": {"h0": torch.cat([w["h0"] for w in parts]), "label": torch.cat([w["label"] for w in parts]),
                        "old_p": torch.cat([w["old_p"] for w in parts]), "s_gen": sum((w["s_gen"] for w in parts), []),
                        "s_ret": sum((w["s_ret"] for w in parts), []), "scenes": sum((w["scenes"] for w in parts), []), "seconds": sum(w["seconds"] for w in parts)}, **worlds}
    tr, se, va = worlds["train"], worlds["select"], worlds["val"]
    y = tr["label"]
    counts = torch.bincount(y, minlength=2).float()
    weight = counts.sum() / (2 * counts.clamp(min=1))
    head = torch.nn.Linear(tr["h0"].shape[1], 2)
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=1e-2)
    best = (-1.0, 0, None)
    curve = []
    for step in range(1, args.max_steps + 1):
        loss = F.cross_entropy(head(tr["h0"]), y, weight=weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0:
            with torch.no_grad():
                acc = accuracy(head(se["h0"]).argmax(-1), se["label"])
            curve.append((step, round(loss.item(), 5), round(acc, 4)))
            if acc > best[0]:
                best = (acc, step, {k: v.detach().clone() for k, v in head.state_dict().items()})
    head.load_state_dict(best[2])
    with torch.no_grad():
        pred = {k: head(w["h0"]).argmax(-1) for k, w in worlds.items()}
    report = {
        "labels": {k: {"n": len(w["label"]), "generate_wins": int((w["label"] == GEN).sum()), "retrieve_wins": int((w["label"] == RET).sum())}
                   for k, w in worlds.items()},
        "chosen_steps": best[1], "select_accuracy": best[0],
        "accuracy": {k: accuracy(p, worlds[k]["label"]) for k, p in pred.items()},
        "majority": {k: majority(w["label"]) for k, w in worlds.items()},
        "old_head_accuracy": {k: accuracy(old_predictions(w, old_classes), w["label"]) for k, w in worlds.items()},
        "old_head_generate_rate": {k: float((old_predictions(w, old_classes) == GEN).float().mean()) for k, w in worlds.items()},
        "new_head_generate_rate": {k: float((p == GEN).float().mean()) for k, p in pred.items()},
        "predictability": {"linear_probe": probe(tr, se, va), "scene_rules": scene_rules(tr, va), "oracle_noise": noise},
        "mean_similarity": {k: {"generated": float(np.mean(w["s_gen"])), "retrieved": float(np.mean(w["s_ret"]))} for k, w in worlds.items()},
        "label_seconds": {k: round(w["seconds"], 1) for k, w in worlds.items()},
        "seconds": round(time.time() - t_start, 1), "labelling_this_process_seconds": round(label_seconds, 1),
        "curve": curve, "args": vars(args), "command": "python " + " ".join(sys.argv),
    }
    os.makedirs(args.out, exist_ok=True)
    save_file({"decision.1." + k: v.contiguous() for k, v in head.state_dict().items()}, os.path.join(args.out, "decision.safetensors"))
    json.dump(report, open(os.path.join(args.out, "report.json"), "w"), indent=1)
    print(json.dumps({k: v for k, v in report.items() if k not in ("curve", "args")}, indent=1), flush=True)

    if args.export:
        path = os.path.join(args.gill, "gill.safetensors")
        state = load_file(path)
        for k, v in head.state_dict().items():
            key = "decision.1." + k
            if key not in state:
                sys.exit(f"error: {path} has no {key}")
            state[key] = v.detach().to(state[key].dtype).contiguous()
        save_file(state, path)
        cfg_path = os.path.join(args.gill, "config.json")
        cfg = json.load(open(cfg_path))
        cfg["decision_classes"] = ["gen", "ret"]
        json.dump(cfg, open(cfg_path, "w"), indent=1)
        print("exported the head into", path, "and decision_classes [gen, ret] into", cfg_path, flush=True)


if __name__ == "__main__":
    main()
