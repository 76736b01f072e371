#!/usr/bin/env python3
"""Stage 4b: GILL on story contexts (issue #11), continuing from a trained GILL folder.

    .venv/bin/python Tools/train/train_gill_story.py --out runs/gill-story --init Examples/StoryWorld/models/gill

Starts from the GILL folder `--init` (gill.safetensors, opt/ with its [IMG] rows, clip/, sd/; the
committed fp16 files upcast to float32) and keeps the LLM, CLIP and SD frozen, as the paper does.
Trains train_gill.py's modules (visual_embeddings, visual_fc, logit_scale, [IMG0..7] rows, retrieval
head, GILLMapper; the decision head is left as it is) on every story panel of the training world:

  - captioning, in the layout Storyloom's `caption` step decodes from: the panel image's visual tokens
    (no BOS, no text), then the panel's description (below) and </s> -> LM loss. The target is the
    description written from the panel's scene graph, not the story sentence: "The cat turns purple."
    cannot be read off a picture, and the old two-pair concatenation taught the LM to run on into the
    next caption;
  - story contexts, laid out exactly as GILLContext.story(.gill) builds them (GILLPrompt.vist): BOS once,
    then each caption tokenised on its own (no separator, no leading space), each earlier caption followed
    by its image's visual tokens (squashed to 224x224 and back through CLIP's processor, as Swift does) when
    images are read, then [IMG0..7]. Per example one of: the first caption alone (a single caption, the
    paper's setting), captions 1..k, or captions 1..k with images 1..k-1 (k = 2..5, 5 most often);
  - targets of the [IMG] block after a context for panel k: LM loss on [IMG0..7]; the GILLMapper regressed
    (L2) onto SD's text-encoder states for the canonical full description of panel k; the retrieval
    head contrastive (InfoNCE, learned scale) against panel k's image, with the in-batch targets and the
    story's other four panels as negatives (Storyloom's evaluation ranks every panel, same story included);
  - with --dialogues N, a share --p-dialogue of the contexts are instead the first r rounds of a training
    dialogue (r = 10 half the time, else 1..9), laid out as GILLContext.dialogue(.gill) builds them (BOS, the
    rounds alone as `Q: …?` / `A: …` lines, as GILL's VisDial script reads them), then [IMG0..7]; their
    targets are the LM loss on [IMG0..7] and the GILLMapper regressed onto SD's text-encoder states for the
    full description of the dialogue's image (no retrieval term: the VisDial setting only generates).

The description is the first-caption grammar applied to the panel's scene graph (storyworld_text.py,
checked against every first caption of the validation world): "<background> with <a size colour kind
position> and <...>."

--train prefix trains the visual prefix alone on captioning, --train heads everything else on contexts (the
prefix frozen); the committed caption stage ran prefix, then heads, then all (the default) — see the model card.
--train mapper trains the GILLMapper alone on contexts (L2 onto SD's text-encoder states; the [IMG] rows, prefix
and heads frozen, so the LLM runs without gradients): what a new SD text encoder needs, since the mapper is the
only part that reads SD's conditioning space, and captions, retrieval and the decision head stay as they were.

Held-out (validation world, default seed 900, 100 stories = 500 panels): retrieval of the last panel from
captions + images (and from captions) among all 500 panels — recall@1/@5 and the largest share of stories
that have one image in their top 3 — and greedy captions (16 tokens) of 100 panels read by storyworld_text's
port of the caption checker; with dialogues, the GILLMapper's distance (MSE) from the description's SD states
after 1/5/10 held-out rounds, beside SD's own encoding of the rounds cut at 77 tokens. Checkpoints every
--ckpt-every steps (OUT/checkpoints/gill_story.pt); a rerun resumes. Saves OUT/model/ as a Storyloom GILL folder (float32; export_models.export makes the fp16 copy).
"""
import argparse
import hashlib
import json
import math
import os
import random
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import storyworld_data as sw  # noqa: E402
import storyworld_text as st  # noqa: E402
from gill_reference import GILLReference  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from train_gill import GILL_TOKENS, Batcher, gill_tokenizer, pooler_of  # noqa: E402
from transformers import CLIPModel, CLIPTextModel, CLIPTokenizer, OPTForCausalLM  # noqa: E402


def stories_of(folder):
    """[(captions[5], scenes[5], image paths[5])] of a world's stories, in order."""
    out = []
    for e in sw.load_collection(folder):
        if e["kind"] == "story" and len(e["panels"]) == 5:
            out.append(([p["text"] for p in e["panels"]], [p["metadata"] for p in e["panels"]],
                        [os.path.join(folder, p["image"]) for p in e["panels"]]))
    return out


def dialogues_of(folder):
    """[(rounds [(question, answer)], scene, image path)] of a world's dialogues, in order."""
    out = []
    for e in sw.load_collection(folder):
        if e["kind"] == "dialogue" and e.get("rounds"):
            p = e["panels"][0]
            out.append(([(r["question"], r["answer"]) for r in e["rounds"]], p["metadata"], os.path.join(folder, p["image"])))
    return out


def visdial_text(rounds):
    """GILLPrompt.visdialText: the rounds alone as `Q: …?` / `A: …` lines joined by newlines (GILL's VisDial script)."""
    return "\n".join(line for q, a in rounds for line in ("Q: " + (q if q.endswith("?") else q + "?"), "A: " + a))


def squashed_u8(u8):
    """GILLPrompt.squashed: 224x224 bicubic, then CLIP's processor back to 64 (bicubic, PIL's path)."""
    out = np.empty_like(u8)
    for i, a in enumerate(u8):
        big = Image.fromarray(a).resize((224, 224), Image.BICUBIC)
        out[i] = np.asarray(big.resize((a.shape[1], a.shape[0]), Image.BICUBIC))
    return out


def clip_digest(clip):
    """12 hex digits of SHA-256 over the CLIP's float32 weights, in state-dict order."""
    h = hashlib.sha256()
    for name, t in clip.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def features(clip, stories, cache, device):
    """CLIP pooler of every panel image, raw [S,5,C] and as a context image (squashed) [S,5,C]; cached under
    `cache` with the CLIP's weight digest added to the name, so another CLIP (train_clip.py --hard-negatives)
    never reads these features."""
    if cache:
        base, ext = os.path.splitext(cache)
        cache = f"{base}-{clip_digest(clip)}{ext}"
    if cache and os.path.exists(cache):
        d = torch.load(cache)
        if d["paths"] == [s[2] for s in stories]:
            return d["raw"], d["squashed"]
    paths = [p for s in stories for p in s[2]]
    raw, sq = [], []
    for i in range(0, len(paths), 2000):
        u8 = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths[i:i + 2000]])
        raw.append(pooler_of(clip, u8, device))
        sq.append(pooler_of(clip, squashed_u8(u8), device))
        print(f"features {i + len(u8)}/{len(paths)}", flush=True)
    raw = torch.cat(raw).view(len(stories), 5, -1)
    sq = torch.cat(sq).view(len(stories), 5, -1)
    if cache:
        torch.save({"paths": [s[2] for s in stories], "raw": raw, "squashed": sq}, cache)
    return raw, sq


class Encoder:
    """Token ids as Swift's GPT2Tokenizer.encode(text, addBOS: false) gives them, memoised."""

    def __init__(self, tok):
        self.tok, self.memo = tok, {}

    def __call__(self, text):
        if text not in self.memo:
            self.memo[text] = self.tok(text, add_special_tokens=False)["input_ids"]
        return self.memo[text]


def context_segments(enc, bos, captions, images, mode, k, img_ids):
    """GILLContext.story(.gill) for panels 1..k plus the [IMG] block: mode 'last' (caption k),
    'captions' or 'images' (captions+images: caption i then image i for i < k)."""
    segs = [("ids", [bos], False)]
    if mode == "last":
        segs.append(("ids", enc(captions[k - 1]), False))
    else:
        for i in range(k):
            segs.append(("ids", enc(captions[i]), False))
            if mode == "images" and i < k - 1:
                segs.append(("image", images[i], False))
    segs.append(("ids", img_ids, True))
    return segs


def dialogue_segments(enc, bos, rounds, r, img_ids):
    """GILLContext.dialogue(.gill) for the first r rounds plus the [IMG] block: BOS, the rounds as one text piece."""
    return [("ids", [bos], False), ("ids", enc(visdial_text(rounds[:r])), False), ("ids", img_ids, True)]


def img_block(batcher, seqs):
    """LM loss, [IMG] hidden states [B,8,E] and input embeddings [B,8,E] of sequences ending in [IMG0..7]."""
    emb, mask, tgt, w = batcher.build(seqs)
    hidden = batcher.gill.lm.model(inputs_embeds=emb, attention_mask=mask).last_hidden_state
    logits = hidden @ w.T
    lm = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=-100)
    ends = mask.sum(1)
    k = len(batcher.img_ids)
    h = torch.stack([hidden[i, n - k:n] for i, n in enumerate(ends.tolist())])
    e = torch.stack([emb[i, n - k:n] for i, n in enumerate(ends.tolist())])
    return lm, h, e


def sd_states(text_model, sd_tok, texts, device):
    ids = sd_tok(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")["input_ids"].to(device)
    with torch.no_grad():
        return text_model(input_ids=ids).last_hidden_state


@torch.no_grad()
def greedy_caption(gill, batcher, tok, pooled, img_ids, max_tokens=16):
    """The `caption` step: visual tokens only, greedy, [IMG] banned, stop at </s> or newline, GILL's
    truncate_caption (cut after the first newline, else after the first period)."""
    w = batcher.weight()
    embs = gill.visual_embeddings(pooled[None]).reshape(1, gill.args["n_visual_tokens"], -1)
    newline = tok("\n", add_special_tokens=False)["input_ids"][0]
    out, past = [], None
    x = embs
    for _ in range(max_tokens):
        o = gill.lm(inputs_embeds=x, past_key_values=past, use_cache=True)
        past = o.past_key_values
        logits = o.logits[0, -1].clone()
        logits[img_ids] = -float("inf")
        t = int(logits.argmax())
        out.append(t)
        if t in (tok.eos_token_id, newline):
            break
        x = F.embedding(torch.tensor([[t]]), w)
    text = tok.decode(out, skip_special_tokens=True).strip("\n")
    if "\n" in text:
        text = text[:text.index("\n") + 1]
    elif "." in text:
        text = text[:text.index(".") + 1]
    return text.strip()


@torch.no_grad()
def evaluate(gill, batcher, enc, tok, stories, raw, sq, img_ids, device, caption_panels=100):
    """Held-out retrieval of each story's last panel among all panels, and caption accuracy."""
    gill.eval()
    pool = F.normalize(gill.visual_fc(raw.reshape(-1, raw.shape[-1])), dim=-1)
    res = {}
    for mode in ("images", "captions", "last"):
        embs = []
        for i in range(0, len(stories), 25):
            seqs = [context_segments(enc, tok.bos_token_id, stories[j][0], sq[j], mode, 5, img_ids) for j in range(i, min(i + 25, len(stories)))]
            _, h, _ = img_block(batcher, seqs)
            embs.append(F.normalize(gill.ret_text_hidden_fcs[0](h[:, 0]), dim=-1))
        sim = torch.cat(embs) @ pool.T
        truth = torch.arange(len(stories)) * 5 + 4
        rank = (sim > sim[torch.arange(len(stories)), truth][:, None]).sum(1)
        top3 = sim.topk(3, dim=1).indices.reshape(-1)
        hub = torch.bincount(top3, minlength=pool.shape[0]).max().item() / len(stories)
        res[mode] = {"recall@1": float((rank < 1).float().mean()), "recall@5": float((rank < 5).float().mean()),
                     "top3_max_share": hub}
    tot = {a: [0, 0] for a in ["background", "kind", "colour", "size", "position"]}
    dialogue = halluc = repeated = 0
    samples = []
    n = 0
    for s in range(len(stories)):
        for p in range(5):
            if n >= caption_panels:
                break
            cap = greedy_caption(gill, batcher, tok, raw[s, p], img_ids)
            v, d, h, r = st.check_caption(cap, stories[s][1][p])
            for a, (c, k) in v.items():
                tot[a][0] += c
                tot[a][1] += k
            dialogue += d
            halluc += bool(h)
            repeated += bool(r)
            if n < 3:
                samples.append((cap, st.description(stories[s][1][p])))
            n += 1
    res["caption_check"] = {a: (round(k / c, 3) if c else None, c) for a, (c, k) in tot.items()}
    res["caption_check"]["dialogue_text"] = dialogue / n
    res["caption_check"]["hallucinated"] = halluc / n
    res["caption_check"]["repeated"] = repeated / n
    res["caption_samples"] = samples
    gill.train()
    gill.lm.eval()
    gill.clip.eval()
    return res


@torch.no_grad()
def evaluate_mapper(gill, batcher, enc, tok, stories, sq, text_model, sd_tok, img_ids, device):
    """Held-out stories: how far the GILLMapper's output after each context (5 captions + 4 images, 5 captions, the
    last caption) lies from SD's text-encoder states for the last panel's full description (MSE), beside SD
    prompted with the last caption itself."""
    gill.eval()
    want = sd_states(text_model, sd_tok, [st.description(s[1][4]) for s in stories], device)
    res = {}
    for mode in ("images", "captions", "last"):
        gen = []
        for i in range(0, len(stories), 25):
            seqs = [context_segments(enc, tok.bos_token_id, stories[j][0], sq[j], mode, 5, img_ids) for j in range(i, min(i + 25, len(stories)))]
            _, h, e = img_block(batcher, seqs)
            gen.append(gill.gen_text_hidden_fcs[0](h, e))
        res[mode] = round(F.mse_loss(torch.cat(gen), want).item(), 4)
    res["sd_last_caption"] = round(F.mse_loss(sd_states(text_model, sd_tok, [s[0][4] for s in stories], device), want).item(), 4)
    gill.train()
    gill.lm.eval()
    gill.clip.eval()
    return res


@torch.no_grad()
def evaluate_dialogues(gill, batcher, enc, tok, dialogues, text_model, sd_tok, img_ids, device):
    """Held-out dialogues: how far the GILLMapper's output from the first 1/5/10 rounds lies from SD's text-encoder
    states for the image's full description (MSE), beside the same distance for SD prompted with the rounds
    themselves, cut at 77 tokens (what `storyworld-visdial.yaml`'s SD rows read)."""
    gill.eval()
    want = sd_states(text_model, sd_tok, [st.description(d[1]) for d in dialogues], device)
    res = {}
    for r in (1, 5, 10):
        gen = []
        for i in range(0, len(dialogues), 25):
            seqs = [dialogue_segments(enc, tok.bos_token_id, d[0], r, img_ids) for d in dialogues[i:i + 25]]
            _, h, e = img_block(batcher, seqs)
            gen.append(gill.gen_text_hidden_fcs[0](h, e))
        sd = sd_states(text_model, sd_tok, [visdial_text(d[0][:r]) for d in dialogues], device)
        res[f"rounds_{r}"] = {"gill_mse": round(F.mse_loss(torch.cat(gen), want).item(), 4),
                              "sd_prompt_mse": round(F.mse_loss(sd, want).item(), 4)}
    gill.train()
    gill.lm.eval()
    gill.clip.eval()
    return res


def contexts_loss(args, rng, train, dlg, sq, raw, descriptions, dlg_descriptions, enc, tok, img_ids, batcher, gill, text_model, sd_tok, device):
    """One batch of contexts -> [IMG] block for panel k: (img_lm + ret_loss + gen_weight * gen_loss, img_lm, ret_loss, gen_loss);
    with --train mapper only the GILLMapper's term (the [IMG] block computed without gradients)."""
    seqs, targets, texts = [], [], []
    for _ in range(args.batch):
        if dlg and rng.random() < args.p_dialogue:
            # Dialogue rounds -> the image's full description (GILL's VisDial setting); no retrieval target.
            d = rng.randrange(len(dlg))
            r = 10 if rng.random() < 0.5 else rng.randint(1, 9)
            seqs.append(dialogue_segments(enc, tok.bos_token_id, dlg[d][0], r, img_ids))
            targets.append(None)
            texts.append(dlg_descriptions[d])
            continue
        s = rng.randrange(len(train))
        if rng.random() < args.p_single:
            mode, k = "last", 1
        else:
            mode = "images" if rng.random() < args.p_images else "captions"
            k = 5 if rng.random() < 0.5 else rng.randint(2, 4)
        seqs.append(context_segments(enc, tok.bos_token_id, train[s][0], sq[s], mode, k, img_ids))
        targets.append((s, k - 1))
        texts.append(descriptions[s][k - 1])
    with torch.set_grad_enabled(args.train != "mapper"):
        img_lm, h, e = img_block(batcher, seqs)
    gen_loss = F.mse_loss(gill.gen_text_hidden_fcs[0](h, e), sd_states(text_model, sd_tok, texts, device))
    if args.train == "mapper":
        zero = torch.zeros((), device=device)
        return args.gen_weight * gen_loss, zero, zero, gen_loss
    # Retrieval (story contexts): targets first, then each story's other panels as hard negatives.
    rows = [i for i, tg in enumerate(targets) if tg is not None]
    targets = [targets[i] for i in rows]
    ret_loss = torch.zeros((), device=device)   # a batch of dialogues only (--p-dialogue 1) has no retrieval term
    if rows:
        t = F.normalize(gill.ret_text_hidden_fcs[0](h[rows, 0]), dim=-1)
        tgt_pooled = torch.stack([raw[s, p] for s, p in targets])
        neg_pooled = torch.stack([raw[s, q] for s, p in targets for q in range(5) if q != p])
        imgs = F.normalize(gill.visual_fc(torch.cat([tgt_pooled, neg_pooled])), dim=-1)
        logits = t @ imgs.T * gill.logit_scale.exp()
        labels = torch.arange(len(t), device=device)
        ret_loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits[:, :len(t)].T, labels)) / 2
    return img_lm + ret_loss + args.gen_weight * gen_loss, img_lm, ret_loss, gen_loss


def load_gill_folder(init, device):
    """A Storyloom GILL folder (gill.safetensors, opt/ with its [IMG] rows, clip/; fp16 files widened to float32) as
    GILLReference with its LLM and CLIP frozen: (tokenizer, [IMG] ids, gill)."""
    tok = gill_tokenizer(os.path.join(init, "opt"))
    img_ids = tok.convert_tokens_to_ids(GILL_TOKENS[1:])
    lm = OPTForCausalLM.from_pretrained(os.path.join(init, "opt"), dtype=torch.float32).to(device).eval().requires_grad_(False)
    assert lm.get_input_embeddings().weight.shape[0] == len(tok), "the GILL folder's OPT should already hold <|image|> and [IMG0..7]"
    clip = CLIPModel.from_pretrained(os.path.join(init, "clip"), dtype=torch.float32).to(device).eval().requires_grad_(False)
    gill = GILLReference(json.load(open(os.path.join(init, "config.json"))), lm, clip).to(device)
    state = {k: v.float() for k, v in load_file(os.path.join(init, "gill.safetensors")).items()}
    missing, unexpected = gill.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(("lm.", "clip.")) for k in missing), (missing, unexpected)
    return tok, img_ids, gill


def snapshot(gill, out, step):
    """The trained weights at an evaluated step, so the export can take the step validation prefers."""
    os.makedirs(os.path.join(out, "evals"), exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in gill.gill_state_dict().items()},
              os.path.join(out, "evals", f"step-{step}.safetensors"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_common_args(ap, steps=1500, batch=32, lr=3e-4)
    ap.add_argument("--init", default=os.path.join(sw.REPO, "Examples", "StoryWorld", "models", "gill"), help="GILL folder to start from")
    ap.add_argument("--stories", type=int, default=8000, help="stories of the training world")
    ap.add_argument("--val-stories", type=int, default=100, help="validation stories (5 panels each: the retrieval pool)")
    ap.add_argument("--p-single", type=float, default=0.2, help="share of contexts that are a first caption alone")
    ap.add_argument("--p-images", type=float, default=0.6, help="share of multi-caption contexts that also read the earlier images")
    ap.add_argument("--dialogues", type=int, default=0,
                    help="training dialogues (a world of the training seed with dialogues only); 0 trains on stories alone")
    ap.add_argument("--val-dialogues", type=int, default=100, help="validation dialogues (held-out mapper distances)")
    ap.add_argument("--p-dialogue", type=float, default=0.3, help="share of contexts that are dialogue rounds, when --dialogues > 0")
    ap.add_argument("--gen-weight", type=float, default=1.0)
    ap.add_argument("--caption-weight", type=float, default=1.0,
                    help="weight of the captioning loss (the visual prefix also gets gradients from contexts with images)")
    ap.add_argument("--caption-batch", type=int, default=None,
                    help="captioning examples per step (default: --batch); the captioning step costs a fifth of a context step")
    ap.add_argument("--train", choices=["all", "prefix", "heads", "mapper"], default="all",
                    help="all: every trained part on captions and contexts; prefix: the visual prefix alone on captions; "
                         "heads: everything but the visual prefix on contexts (after a prefix run); "
                         "mapper: the GILLMapper alone on contexts (after SD's text encoder changed)")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--export-step", type=int, default=None,
                    help="save the model from the weights evaluated at this step (OUT/evals/step-N.safetensors) instead of the last")
    args = ap.parse_args()
    device = sw.setup(args)

    train_dir = sw.make_world(os.path.join(args.data, f"world-{args.train_seed}-{args.stories}-0"), args.train_seed, args.stories, 0, "train")
    val_dir = sw.make_world(os.path.join(args.data, f"world-{args.val_seed}-{args.val_stories * 5}-0"), args.val_seed, args.val_stories * 5, 0, "validation")
    train = stories_of(train_dir)
    val = stories_of(val_dir)[:args.val_stories]
    dlg, vdlg = [], []
    if args.dialogues > 0:
        dlg = dialogues_of(sw.make_world(os.path.join(args.data, f"world-{args.train_seed}-0-{args.dialogues}"), args.train_seed, 0, args.dialogues, "train"))
        vdlg = dialogues_of(sw.make_world(os.path.join(args.data, f"world-{args.val_seed}-0-{args.val_dialogues}"), args.val_seed, 0, args.val_dialogues, "validation"))

    tok, img_ids, gill = load_gill_folder(args.init, device)
    clip = gill.clip
    text_model = CLIPTextModel.from_pretrained(os.path.join(args.init, "sd", "text_encoder"), dtype=torch.float32).to(device).eval().requires_grad_(False)
    sd_tok = CLIPTokenizer.from_pretrained(os.path.join(args.init, "sd", "tokenizer"))
    frozen = ("lm.", "clip.", "decision.") + (("visual_embeddings.",) if args.train == "heads" else ())
    own = [p for n, p in gill.named_parameters() if not n.startswith(frozen)]
    if args.train == "prefix":
        own = list(gill.visual_embeddings.parameters())
    if args.train == "mapper":
        gill.requires_grad_(False)
        own = list(gill.gen_text_hidden_fcs.parameters())
        for p in own:
            p.requires_grad_(True)
    gill.decision.requires_grad_(False)
    if args.train == "heads":   # the prefix also reads the contexts' images; frozen, it needs no gradient there
        gill.visual_embeddings.requires_grad_(False)
    batcher = Batcher(gill, img_ids, tok.pad_token_id, device)
    enc = Encoder(tok)

    raw, sq = features(clip, train, os.path.join(args.data, f"gill-story-features-{args.train_seed}-{args.stories}.pt"), device)
    vraw, vsq = features(clip, val, None, device)
    descriptions = [[st.description(sc) for sc in s[1]] for s in train]
    dlg_descriptions = [st.description(d[1]) for d in dlg]
    print(f"{len(train)} training stories, {len(dlg)} dialogues, {len(val)} held-out stories, {len(vdlg)} dialogues; GILL {sum(p.numel() for p in own) / 1e6:.2f}M trained from {args.init}", flush=True)

    def held_out():
        # --train mapper changes nothing retrieval or captions read, so only the mapper's distances are measured.
        r = {} if args.train == "mapper" else evaluate(gill, batcher, enc, tok, val, vraw, vsq, img_ids, device)
        r["mapper"] = evaluate_mapper(gill, batcher, enc, tok, val, vsq, text_model, sd_tok, img_ids, device)
        if vdlg:
            r["dialogues"] = evaluate_dialogues(gill, batcher, enc, tok, vdlg, text_model, sd_tok, img_ids, device)
        return r

    opt = torch.optim.AdamW(own, lr=args.lr, weight_decay=0.0)
    sched = sw.warmup_cosine(opt, 50, args.steps)
    ckpt = sw.Checkpoint(args.out, "gill_story")
    step, elapsed, evals = 0, 0.0, []
    if step == 0 and not (ckpt.exists() and not args.restart):
        before = held_out()
        print("held-out at step 0 (the initial GILL):", json.dumps(before), flush=True)
        evals.append({"step": 0, **before})
    if ckpt.exists() and not args.restart:
        step, elapsed, extra = ckpt.load({"gill": gill}, {"opt": opt, "sched": sched})
        evals = extra.get("evals", [])
    timer = sw.Timer(elapsed)
    log = sw.LossLog(args.out, "gill_story", step)
    rng = random.Random(args.seed * 7919 + step)   # reseeded from the step, so a resume draws fresh batches
    gill.train()
    gill.lm.eval()
    gill.clip.eval()
    while step < args.steps:
        zero = torch.zeros((), device=device)
        cap_loss = img_lm = ret_loss = gen_loss = zero
        # Captioning: any panel, visual tokens -> its description </s>. Its gradient reaches the visual prefix alone.
        if args.train not in ("heads", "mapper"):
            cap_seqs = []
            for _ in range(args.caption_batch or args.batch):
                s, p = rng.randrange(len(train)), rng.randrange(5)
                cap_seqs.append([("image", raw[s, p], False), ("ids", enc(descriptions[s][p]) + [tok.eos_token_id], True)])
            _, _, cap_loss = batcher.run(cap_seqs)
        if args.train == "prefix":
            loss = cap_loss
        else:
            loss, img_lm, ret_loss, gen_loss = contexts_loss(args, rng, train, dlg, sq, raw, descriptions, dlg_descriptions, enc, tok, img_ids, batcher, gill, text_model, sd_tok, device)
            loss = loss + args.caption_weight * cap_loss

        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(own, 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            gill.logit_scale.clamp_(0, math.log(100))
        step += 1
        if step % args.log_every == 0 or step == args.steps:
            log.log(step, loss=loss.item(), caption=cap_loss.item(), img_tokens=img_lm.item(), retrieval=ret_loss.item(), generation=gen_loss.item())
        if step % args.eval_every == 0 or step == args.steps:
            r = held_out()
            print(f"held-out at step {step}:", json.dumps(r), flush=True)
            evals.append({"step": step, **r})
            snapshot(gill, args.out, step)
        if step % args.ckpt_every == 0 or step == args.steps:
            ckpt.save(step, timer.elapsed(), {"gill": gill}, {"opt": opt, "sched": sched}, {"evals": evals})
    gill.eval()
    if not evals or evals[-1]["step"] != step:
        evals.append({"step": step, **held_out()})
        snapshot(gill, args.out, step)
    json.dump(evals, open(os.path.join(args.out, "evals.json"), "w"), indent=1)
    chosen = step
    if args.export_step is not None:   # a step chosen on the validation figures in evals.json
        chosen = args.export_step
        gill.load_state_dict({k: v for k, v in load_file(os.path.join(args.out, "evals", f"step-{chosen}.safetensors")).items()}, strict=False)

    # The Storyloom GILL folder: float32 here; clip/ and sd/ copied from --init unchanged (frozen).
    model_dir = os.path.join(args.out, "model")
    if os.path.exists(model_dir):
        shutil.rmtree(model_dir)
    os.makedirs(model_dir)
    save_file({k: v.detach().cpu().contiguous() for k, v in gill.gill_state_dict().items()}, os.path.join(model_dir, "gill.safetensors"))
    shutil.copy(os.path.join(args.init, "config.json"), model_dir)
    gill.install_img_rows()   # Swift embeds [IMG0..7] from opt/'s token embeddings
    gill.lm.save_pretrained(os.path.join(model_dir, "opt"))
    for f in os.listdir(os.path.join(args.init, "opt")):
        if not f.endswith((".safetensors", "config.json")) or f in ("tokenizer_config.json",):
            shutil.copy(os.path.join(args.init, "opt", f), os.path.join(model_dir, "opt", f))
    gen_cfg = os.path.join(model_dir, "opt", "generation_config.json")
    if os.path.exists(gen_cfg):
        os.remove(gen_cfg)
    for sub in ("clip", "sd"):
        shutil.copytree(os.path.join(args.init, sub), os.path.join(model_dir, sub))
    summary = {"steps": step, "exported_step": chosen, "batch": args.batch, "caption_batch": args.caption_batch or args.batch, "caption_weight": args.caption_weight, "train": args.train, "wall_minutes": round(timer.elapsed() / 60, 1), "final_losses": log.last,
               "train_stories": len(train), "val_stories": len(val), "train_dialogues": len(dlg), "p_dialogue": args.p_dialogue if dlg else 0, "command": "python " + " ".join(sys.argv), "machine": sw.machine(),
               "evals": evals}
    json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"), indent=1)
    print("saved", model_dir, flush=True)


if __name__ == "__main__":
    main()
