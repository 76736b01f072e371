#!/usr/bin/env python3
"""How much of a panel's scene graph the StoryWorld CLIP's pooled image features carry (issue #11).

    .venv/bin/python Tools/train/clip_probe.py --data runs/data

GILL reads an image through one pooled CLIP vector (its visual prefix for captions, visual_fc for
retrieval), so that vector bounds every caption and retrieval the trained parts can reach. This fits
probes on the pooled features of the training world's panels (seed 1000; 80% fit, 20% held out) and
prints held-out accuracy beside the majority class:

  - one-object panels: the object's colour, kind, size, position;
  - two-object panels: the colour / kind / size of the object on the left, in the middle, on the right
    ("none" when no object stands there) — the binding of attributes to objects that a caption needs.

Each probe is fitted twice: linear (what GILL's linear visual prefix can read directly) and a one-hidden-
layer MLP (512 GELU units: a looser bound on what the features hold). Then, on the validation world's first
panels, how often an image prefers its caption to one binding negative of it (train_clip.py's
`binding_accuracy`; chance 0.5). --clip compares CLIPs (e.g. one trained with --hard-negatives).
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import storyworld_data as sw  # noqa: E402
import train_clip  # noqa: E402
import train_gill_story as story  # noqa: E402
from transformers import CLIPModel  # noqa: E402


def fit(x, y, classes, hidden, steps=600):
    """Held-out accuracy of a probe fitted by full-batch Adam on the first 80%."""
    n = int(len(x) * 0.8)
    torch.manual_seed(0)
    if hidden:
        m = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.GELU(), torch.nn.Linear(hidden, classes))
    else:
        m = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3 if hidden else 1e-2, weight_decay=1e-4)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(m(x[:n]), y[:n]).backward()
        opt.step()
    with torch.no_grad():
        return float((m(x[n:]).argmax(1) == y[n:]).float().mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(sw.REPO, "runs", "data"), help="folder of generated worlds and cached features")
    ap.add_argument("--clip", default=os.path.join(sw.REPO, "Examples", "StoryWorld", "models", "gill", "clip"))
    ap.add_argument("--train-seed", type=int, default=1000)
    ap.add_argument("--stories", type=int, default=8000)
    ap.add_argument("--val-seed", type=int, default=900)
    ap.add_argument("--val-pairs", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    folder = sw.make_world(os.path.join(args.data, f"world-{args.train_seed}-{args.stories}-0"), args.train_seed, args.stories, 0, "train")
    stories = story.stories_of(folder)
    clip = CLIPModel.from_pretrained(args.clip, dtype=torch.float32).eval().requires_grad_(False)
    # The same cache train_gill_story.py fills (pooled features of every panel, raw and squashed; per CLIP).
    cache = f"gill-story-features-{args.train_seed}-{args.stories}.pt"
    raw, _ = story.features(clip, stories, os.path.join(args.data, cache), "cpu")

    one, two = {a: [] for a in ("colour", "kind", "size", "position")}, {}
    x1, x2 = [], []
    for s, (_, scenes, _) in enumerate(stories):
        for p, scene in enumerate(scenes):
            objects = scene["objects"]
            if len(objects) == 1:
                x1.append(raw[s, p])
                for a in one:
                    one[a].append(objects[0][a])
            elif len(objects) == 2:
                x2.append(raw[s, p])
                at = {o["position"]: o for o in objects}
                for where in ("left", "middle", "right"):
                    for a in ("colour", "kind", "size"):
                        two.setdefault(f"{a} of the object {'in the' if where == 'middle' else 'on the'} {where}", []).append(at[where][a] if where in at else "none")

    rows = []
    for name, x, table in (("one object", x1, one), ("two objects", x2, two)):
        x = torch.stack(x).float()
        x = (x - x.mean(0)) / x.std(0)
        for a, labels in table.items():
            vocab = sorted(set(labels))
            y = torch.tensor([vocab.index(v) for v in labels])
            held = y[int(len(y) * 0.8):]
            majority = float(torch.bincount(held, minlength=len(vocab)).max()) / len(held)
            rows.append({"panels": name, "n": len(y), "attribute": a, "majority": round(majority, 3),
                         "linear": round(fit(x, y, len(vocab), 0), 3), "mlp": round(fit(x, y, len(vocab), 512), 3)})
            print(f"{name:12s} {a:40s} majority {majority:.3f}  linear {rows[-1]['linear']:.3f}  mlp {rows[-1]['mlp']:.3f}  (n {len(y)})", flush=True)
    val_dir = sw.make_world(os.path.join(args.data, f"world-{args.val_seed}-{args.val_pairs}-0"), args.val_seed, args.val_pairs, 0, "validation")
    val = [p for p in sw.panels(val_dir) if sw.describes_scene(p)][:args.val_pairs]
    binding = train_clip.binding_accuracy(clip, sw.load_clip_tokenizer(args.clip), val,
                                          sw.clip_pixels(sw.load_images([p["image"] for p in val])), "cpu")
    for name, (accuracy, n) in binding.items():
        print(f"binding, {name:15s} the image prefers its caption to a binding negative: {accuracy:.3f} (n {n}, chance 0.5)", flush=True)
        rows.append({"panels": name, "n": n, "attribute": "binding negative", "accuracy": round(accuracy, 3)})
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
