#!/usr/bin/env python3
"""The GILL table in miniature (issue #6): runs Workflows/storyworld-vist.yaml and storyworld-visdial.yaml for
generation seeds 1, 2, 3 (`--set '*.seed=N'`) and prints the README's tables from the run summaries
(`storyloom run … --json`: per score column its mean, 95% interval and n).

    python3 Tools/storyworld_table.py [--storyloom .build/release/storyloom] [--seeds 1 2 3] [--out DIR] [--jobs N] [--threads N]

Summaries are kept in DIR (default Output/storyworld-table/) as vist-seedN.json and visdial-seedN.json; a
rerun reuses the store's cached results, so only new seeds compute. Standard library only.
"""
import argparse
import json
import math
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

VIST_ROWS = [("Stable Diffusion, last caption", "sim_sd_last.score", "attr_sd_last"),
             ("Stable Diffusion, 5 captions", "sim_sd_captions.score", "attr_sd_captions"),
             ("GILL, last caption", "sim_gill_last.score", "attr_gill_last"),
             ("GILL, 5 captions", "sim_gill_captions.score", "attr_gill_captions"),
             ("GILL, 5 captions + 4 images", "sim_gill_images.score", "attr_gill_images")]
VISDIAL_ROWS = [(f"{model}, {n} round{'s' if n > 1 else ''}", f"sim_{key}_{n}.score", f"attr_{key}_{n}")
                for model, key in [("Stable Diffusion", "sd"), ("GILL", "gill")] for n in (1, 5, 10)]
# The paper's numbers as the seed summary and DESIGN.md state them (Koh et al. 2023: CLIP similarity with
# CLIP ViT-L/14 on VIST and VisDial); the other cells are left blank rather than quoted from memory.
PAPER = {"Stable Diffusion, 5 captions": 0.598, "GILL, 5 captions": 0.612, "GILL, 5 captions + 4 images": 0.641,
         "Stable Diffusion, 10 rounds": 0.622, "GILL, 10 rounds": 0.645}


def run(storyloom, workflow, seed, out, extra):
    path = os.path.join(out, f"{os.path.basename(workflow).split('.')[0].replace('storyworld-', '')}-seed{seed}.json")
    cmd = [storyloom, "run", workflow, "--json", "--quiet", "--wait", "--set", f"*.seed={seed}"] + extra
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    with open(path, "w") as f:
        f.write(result.stdout)
    return json.loads(result.stdout)


def scores(summary):
    out = {}
    for step in summary["steps"]:
        for s in step["scores"]:
            out[s["name"]] = s
    return out


def fmt(x, digits=3):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def table(rows, runs, title):
    per_seed = [scores(r) for r in runs]
    lines = [f"**{title}** (n = {per_seed[0][rows[0][1]]['n']} per seed; ± is the 95% interval of seed {SEEDS[0]}'s mean; "
             f"spread = range of the per-seed means over seeds {', '.join(map(str, SEEDS))})", "",
             "| setting | CLIP similarity (seed %d) | spread over seeds | object colour acc. | background acc. | paper (ViT-L/14) |" % SEEDS[0],
             "| --- | --- | --- | --- | --- | --- |"]
    for name, sim, attr in rows:
        first = per_seed[0][sim]
        means = [s[sim]["mean"] for s in per_seed]
        colour = sum(s[f"{attr}.colour"]["mean"] for s in per_seed) / len(per_seed)
        background = sum(s[f"{attr}.background"]["mean"] for s in per_seed) / len(per_seed)
        lines.append(f"| {name} | {fmt(first['mean'])} ± {fmt(first['ci95'])} | {fmt(min(means))}–{fmt(max(means))} "
                     f"| {fmt(colour, 2)} | {fmt(background, 2)} | {fmt(PAPER.get(name))} |")
    return "\n".join(lines)


def extras(runs):
    per_seed = [scores(r) for r in runs]
    s = per_seed[0]
    acc = [p["oracle.correct"]["mean"] for p in per_seed]
    wins = [p["oracle.generate_wins"]["mean"] for p in per_seed]
    return (f"Retrieval from 5 captions + 4 images among the {s['retrieved.target_rank']['n'] * 5 - 4} panel images "
            f"the context has not shown (GILL's protocol: `exclude_context`): "
            f"recall@1 {fmt(s['retrieved.hit_at_1']['mean'])}, recall@5 {fmt(s['retrieved.hit_at_k']['mean'])} "
            f"(mean rank {fmt(s['retrieved.target_rank']['mean'], 1)}). Decision accuracy against the oracle "
            f"(generated vs best image of the other stories, closer to the truth in CLIP space): "
            f"{', '.join(fmt(a) for a in acc)} for seeds {', '.join(map(str, SEEDS))}; generation wins "
            f"{', '.join(fmt(w) for w in wins)} of the time.")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--storyloom", default=os.path.join(ROOT, ".build", "release", "storyloom"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--out", default=os.path.join(ROOT, "Output", "storyworld-table"))
    ap.add_argument("--jobs", type=int, default=1, help="storyloom run --jobs (batches in flight)")
    ap.add_argument("--threads", type=int, default=0, help="storyloom run --threads (0: its default)")
    args = ap.parse_args()
    extra = ["--jobs", str(args.jobs)] + (["--threads", str(args.threads)] if args.threads else [])
    SEEDS = args.seeds
    os.makedirs(args.out, exist_ok=True)
    vist = [run(args.storyloom, "Workflows/storyworld-vist.yaml", s, args.out, extra) for s in SEEDS]
    visdial = [run(args.storyloom, "Workflows/storyworld-visdial.yaml", s, args.out, extra) for s in SEEDS]
    print(table(VIST_ROWS, vist, "Stories (VIST-style): the last panel"))
    print()
    print(extras(vist))
    print()
    print(table(VISDIAL_ROWS, visdial, "Dialogues (VisDial-style): the scene"))
