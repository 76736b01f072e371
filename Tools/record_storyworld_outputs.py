#!/usr/bin/env python3
"""Records PyTorch outputs of the StoryWorld models for Storyloom's Swift comparison test
(issue #6: "a Swift test runs a few items through each trained model and compares with PyTorch
outputs recorded at training time"; Tests/ModelsTests/StoryWorldModelTests.swift).

    .venv/bin/python Tools/record_storyworld_outputs.py                      # Examples/StoryWorld/models/{clip,sd,gill}
    .venv/bin/python Tools/record_storyworld_outputs.py --clip Examples/models/tiny-gill/clip \\
        --sd Examples/models/tiny-gill/sd --gill Examples/models/tiny-gill           # the random tiny models

Inputs (committed next to the outputs in --out, default Tests/ModelsTests/Fixtures/storyworld/): three
StoryWorld panel PNGs with their captions, a five-caption story and a dialogue from
`storyloom world --seed 5 --stories 2 --dialogues 1 --display-size 0` (the script runs the CLI
when the PNGs are not there yet; $STORYLOOM or .build/debug/storyloom).

Each model is loaded as its files say, weights upcast to float32 (fp16 files included):
  CLIP  the class in config.json `architectures` (CLIPModel, or a single-tower *WithProjection), images
        through CLIPImageProcessorPil from the folder's preprocessor_config.json (the PIL path Storyloom
        mirrors); text ids as make_clip_fixtures.reference_ids builds them.
        Records: vision pooler and projected image embeddings of the PNGs; text pooler and projected
        embeddings of the captions (only when the folder has a text tower and vocab.json/merges.txt).
  SD    StableDiffusionPipeline.from_pretrained with the folder's own scheduler: the float image
        (output_type="np") of one caption, 4 steps, guidance 4, seed 3.
  OPT   gill/opt as OPTForCausalLM: last-position logits of a story text, 8 greedy tokens.
  GILL  Tools/gill_reference.GILLReference with gill.safetensors: greedy caption ids of a PNG (BOS and
        its visual prefix, [IMG] tokens banned, stop at </s>), image retrieval embeddings, and for
        contexts (a caption, the story's captions, the dialogue) the [IMG0] retrieval embedding,
        the decision probabilities and, for the caption, the GILLMapper prompt embeddings.

Writes expected.safetensors (float32) and expected.json: inputs, token ids (with each greedy step's
top-1 minus top-2 logit margin, so a mismatch can be told from a near tie), model folders (relative
to the repository), SHA-256 of every model file (so the test can tell a stale fixture from a bug),
library versions.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import PIL
import torch
import transformers
from PIL import Image
from safetensors.torch import load_file, save_file

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
from gill_reference import GILLReference  # noqa: E402
from make_clip_fixtures import reference_ids  # noqa: E402
from make_opt_fixtures import gill_tokenizer  # noqa: E402

WORLD_SEED = 5
IMAGES = ["story-00001-1.png", "story-00002-1.png", "dialogue-00001.png"]
DIALOGUE_ROUNDS = 3          # rounds of the dialogue context (GILLContext.dialogue's text)
OPT_NEW_TOKENS = 8
CAPTION_MAX_TOKENS = 12
SD_STEPS, SD_GUIDANCE, SD_SEED = 4, 4.0, 3


def fail(message):
    sys.exit(f"record_storyworld_outputs.py: {message}")


def rel(path):
    return os.path.relpath(os.path.abspath(path), REPO)


def digests(folder):
    """SHA-256 of every file under folder (model cards left out), keyed by repository-relative path."""
    out = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(".md"):
                continue
            path = os.path.join(root, f)
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            out[rel(path)] = h.hexdigest()
    return out


def load_world(out):
    """The three PNGs and the texts, from out/ (committed) or a fresh `storyloom world` run."""
    inputs = os.path.join(out, "inputs.json")
    if all(os.path.exists(os.path.join(out, f)) for f in IMAGES) and os.path.exists(inputs):
        return json.load(open(inputs))
    binary = os.environ.get("STORYLOOM", os.path.join(REPO, ".build", "debug", "storyloom"))
    if not os.path.exists(binary):
        fail(f"{binary} not found: run `swift build` first (or set $STORYLOOM) to render the StoryWorld inputs")
    world = os.path.join(out, "_world")
    shutil.rmtree(world, ignore_errors=True)
    subprocess.run([binary, "world", "--output", world, "--seed", str(WORLD_SEED), "--stories", "2", "--dialogues", "1",
                    "--display-size", "0"], check=True)
    items = [json.loads(line) for line in open(os.path.join(world, "collection.jsonl"))]
    stories = [i for i in items if i["kind"] == "story"]
    dialogue = next(i for i in items if i["kind"] == "dialogue")
    for f in IMAGES:
        shutil.copy(os.path.join(world, "images", f), os.path.join(out, f))
    shutil.rmtree(world)
    data = {
        "world": f"storyloom world --seed {WORLD_SEED} --stories 2 --dialogues 1 --display-size 0",
        "images": IMAGES,
        # The caption of each PNG: the first panels' scene descriptions and the dialogue's caption.
        "captions": [stories[0]["panels"][0]["text"], stories[1]["panels"][0]["text"], dialogue["panels"][0]["text"]],
        "story": [p["text"] for p in stories[0]["panels"]],
        "dialogue": {"caption": dialogue["panels"][0]["text"],
                     "rounds": [[r["question"], r["answer"]] for r in dialogue["rounds"][:DIALOGUE_ROUNDS]]},
    }
    json.dump(data, open(inputs, "w"), indent=1)
    return data


def model_class(folder):
    config = os.path.join(folder, "config.json")
    archs = json.load(open(config)).get("architectures") or []
    if len(archs) != 1 or not hasattr(transformers, archs[0]):
        fail(f"{config}: 'architectures' should name one transformers class, got {archs}")
    return getattr(transformers, archs[0])


def load_clip(folder):
    model = model_class(folder).from_pretrained(folder, dtype=torch.float32).eval()
    processor = transformers.CLIPImageProcessorPil.from_pretrained(folder) \
        if os.path.exists(os.path.join(folder, "preprocessor_config.json")) else None
    return model, processor


def pixel_values(processor, images):
    return torch.from_numpy(np.stack([processor(img, return_tensors="np")["pixel_values"][0] for img in images])).float()


def record_clip(folder, images, captions, out, meta):
    model, processor = load_clip(folder)
    info = {"class": type(model).__name__}
    if hasattr(model, "vision_model"):
        if processor is None:
            fail(f"{folder}: a vision tower but no preprocessor_config.json")
        pixels = pixel_values(processor, images)
        with torch.no_grad():
            pooled = model.vision_model(pixel_values=pixels).pooler_output
            out["clip.image_pooler"] = pooled
            if hasattr(model, "visual_projection"):
                out["clip.image_embeds"] = model.visual_projection(pooled)
        info["image_size"] = list(pixels.shape[2:])
    has_vocab = all(os.path.exists(os.path.join(folder, f)) for f in ("vocab.json", "merges.txt"))
    if hasattr(model, "text_model") and has_vocab:
        _, ids = reference_ids(folder, captions)
        with torch.no_grad():
            pooled = model.text_model(input_ids=torch.tensor(ids)).pooler_output
            out["clip.text_pooler"] = pooled
            if hasattr(model, "text_projection"):
                out["clip.text_embeds"] = model.text_projection(pooled)
        info["text_ids"] = ids
    else:
        info["text"] = "not recorded: " + ("no text tower" if not hasattr(model, "text_model") else "no vocab.json/merges.txt")
    meta["clip"] = info


def record_sd(folder, captions, out, meta):
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32, safety_checker=None,
                                                   requires_safety_checker=False)
    # The first caption that fits the text encoder untruncated (Storyloom refuses longer prompts).
    limit = pipe.text_encoder.config.max_position_embeddings - 2
    fitting = [c for c in captions if len(pipe.tokenizer(c)["input_ids"]) - 2 <= limit]
    if not fitting:
        fail(f"{folder}/tokenizer: no caption fits in {limit} tokens")
    prompt = fitting[0]
    with torch.no_grad():
        image = pipe(prompt, num_inference_steps=SD_STEPS, guidance_scale=SD_GUIDANCE,
                     generator=torch.Generator("cpu").manual_seed(SD_SEED), output_type="np").images
    out["sd.image"] = torch.from_numpy(image)
    meta["sd"] = {"prompt": prompt, "negative_prompt": "", "scheduler": type(pipe.scheduler).__name__, "steps": SD_STEPS,
                  "guidance": SD_GUIDANCE, "seed": SD_SEED, "shape": list(image.shape)}


def load_gill(folder):
    config = os.path.join(folder, "config.json")
    args = json.load(open(config))
    from transformers import OPTForCausalLM
    lm = OPTForCausalLM.from_pretrained(os.path.join(folder, "opt"), dtype=torch.float32).eval()
    clip, processor = load_clip(os.path.join(folder, "clip"))
    gill = GILLReference(args, lm, clip).eval()
    weights = os.path.join(folder, "gill.safetensors")
    state = {k: v.float() for k, v in load_file(weights).items()}
    missing, unexpected = gill.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("lm.", "clip."))]
    if missing or unexpected:
        fail(f"{weights}: missing {missing[:8]}, unexpected {unexpected[:8]}")
    gill.install_img_rows()
    return gill, gill_tokenizer(os.path.join(folder, "opt")), processor


def margin(logits):
    """Top-1 minus top-2 logit: how close a greedy step was to a tie (a tiny margin may flip in float32)."""
    top = torch.topk(logits, 2).values
    return round(float(top[0] - top[1]), 6)


def greedy_caption(gill, embs, banned, eos):
    ids, margins = [], []
    with torch.no_grad():
        for _ in range(CAPTION_MAX_TOKENS):
            logits, _ = gill.run(embs)
            last = logits[-1].clone()
            last[banned] = -float("inf")
            tok = int(torch.argmax(last))
            ids.append(tok)
            margins.append(margin(last))
            if tok == eos:
                break
            embs = torch.cat([embs, gill.embed_ids([tok])], 0)
    return ids, margins


def record_gill(folder, images, data, out, meta):
    gill, tok, processor = load_gill(folder)
    img_ids = gill.args["gen_token_idx"]
    if [tok.convert_tokens_to_ids("[IMG%d]" % i) for i in range(8)] != img_ids:
        fail(f"{folder}/config.json: gen_token_idx {img_ids} differs from the tokenizer's [IMG] ids")
    pixels = pixel_values(processor, images)
    info = {"img_ids": img_ids}
    with torch.no_grad():
        out["gill.image_ret"] = gill.image_retrieval_embedding(pixels)
        # Captioning: BOS, the first PNG's visual tokens; [IMG] tokens banned; stop at </s>.
        prompt = torch.cat([gill.embed_ids([tok.bos_token_id]), gill.visual_prefix(pixels[:1])[0]], 0)
        info["caption_ids"], info["caption_margins"] = greedy_caption(gill, prompt, img_ids, tok.eos_token_id)
        info["caption_text"] = tok.decode(info["caption_ids"], skip_special_tokens=True)
        # Contexts as GILLContext writes them: the caption alone, the story's captions joined by spaces,
        # the dialogue's caption and rounds. BOS, context ids, then the forced [IMG0..7] block.
        d = data["dialogue"]
        contexts = {"caption": data["captions"][0], "story": " ".join(data["story"]),
                    "dialogue": " ".join([d["caption"]] + [f"Q: {q} A: {a}" for q, a in d["rounds"]])}
        info["contexts"] = {}
        for name, text in contexts.items():
            ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
            h = gill.heads(gill.embed_ids(ids + img_ids), len(ids))
            out[f"gill.{name}.ret_embedding"] = h["ret_embedding"]
            out[f"gill.{name}.decision"] = h["decision"]
            out[f"gill.{name}.scores"] = gill.scores(h["ret_embedding"], out["gill.image_ret"])
            if name == "caption":
                out["gill.caption.prompt_embeds"] = h["prompt_embeds"]
            info["contexts"][name] = {"text": text, "ids": ids}
    meta["gill"] = info


def record_opt(folder, text, out, meta):
    from transformers import AutoTokenizer, OPTForCausalLM
    model = OPTForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ids = AutoTokenizer.from_pretrained(folder)(text)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
        gen = model.generate(torch.tensor([ids]), max_new_tokens=OPT_NEW_TOKENS, do_sample=False, eos_token_id=None,
                             pad_token_id=model.config.pad_token_id, output_scores=True, return_dict_in_generate=True)
    out["opt.last_logits"] = logits
    meta["opt"] = {"text": text, "ids": ids, "greedy_ids": gen.sequences[0, len(ids):].tolist(),
                   "greedy_margins": [margin(s[0]) for s in gen.scores]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=os.path.join(REPO, "Examples", "StoryWorld", "models"),
                    help="folder with clip/, sd/, gill/ (default Examples/StoryWorld/models)")
    ap.add_argument("--clip", help="CLIP folder (default MODELS/clip)")
    ap.add_argument("--sd", help="diffusers Stable Diffusion folder (default MODELS/sd)")
    ap.add_argument("--gill", help="Storyloom GILL folder with opt/ and clip/ (default MODELS/gill)")
    ap.add_argument("--out", default=os.path.join(REPO, "Tests", "ModelsTests", "Fixtures", "storyworld"))
    args = ap.parse_args()
    folders = {k: getattr(args, k) or os.path.join(args.models, k) for k in ("clip", "sd", "gill")}
    for k, f in folders.items():
        if not os.path.isfile(os.path.join(f, "model_index.json" if k == "sd" else "config.json")):
            fail(f"{k} model folder {f} is missing or incomplete (pass --{k} or --models)")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    data = load_world(args.out)
    images = [Image.open(os.path.join(args.out, f)).convert("RGB") for f in data["images"]]

    out = {}
    meta = {"inputs": data,
            "models": {k: rel(f) for k, f in folders.items()},
            "digests": {k: digests(f) for k, f in folders.items()},
            "script": "Tools/record_storyworld_outputs.py",
            "command": "python " + " ".join([rel(sys.argv[0])] + sys.argv[1:]),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "diffusers": __import__("diffusers").__version__, "pillow": PIL.__version__,
                         "python": sys.version.split()[0]}}
    record_clip(folders["clip"], images, data["captions"], out, meta)
    record_sd(folders["sd"], data["captions"], out, meta)
    record_opt(os.path.join(folders["gill"], "opt"), " ".join(data["story"][:3]), out, meta)
    record_gill(folders["gill"], images, data, out, meta)

    save_file({k: v.detach().float().contiguous() for k, v in out.items()}, os.path.join(args.out, "expected.safetensors"))
    json.dump(meta, open(os.path.join(args.out, "expected.json"), "w"), indent=1)
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {rel(args.out)}: {len(out)} tensors, {size / 1024:.0f} KB; caption {meta['gill']['caption_text']!r}; "
          f"opt greedy {meta['opt']['greedy_ids']}; sd {meta['sd']['scheduler']} {meta['sd']['shape']}")


if __name__ == "__main__":
    main()
