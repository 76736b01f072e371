#!/usr/bin/env python3
"""Stage 4: GILL on StoryWorld with the LLM (stage 3's OPT), CLIP (stage 1) and SD (stage 2) frozen.

    .venv/bin/python Tools/train/train_gill.py --out runs/gill --opt runs/opt/model --clip runs/clip/model --sd runs/sd/model

Modules are Tools/gill_reference.py's (GILLReference: visual_embeddings, visual_fc, logit_scale,
input_embeddings = the [IMG0..7] rows, ret_text_hidden_fcs, gen_text_hidden_fcs = GILLMapper, decision).
Phase 1 (`--steps`), per batch of caption-image pairs (first story panels), as in the paper:
  - captioning: BOS, the image's visual prefix (CLIP pooler -> visual_embeddings), caption -> LM loss on
    the caption; with probability --concat two pairs are concatenated (image, caption, image, caption) to
    imitate interleaved input;
  - [IMG] tokens: BOS, caption, [IMG0..7] -> LM loss on the caption and the [IMG] tokens (only the
    [IMG] rows train; input and output embeddings are tied, as in OPT);
  - generation: GILLMapper(last hidden states + input embeddings of the [IMG] block) -> L2 to the SD
    text encoder's last hidden state (77 x width) for the caption;
  - retrieval: ret_text_hidden_fcs([IMG0] hidden) vs visual_fc(CLIP pooler), symmetric InfoNCE with
    the learned logit scale.
Phase 2 (decision): for --decision-samples training captions, retrieve the top image from a pool
(the ground-truth image left out) and generate one with SD from the mapper's output; label
"generate" when the generated image's CLIP image embedding (trained CLIP) is closer to the ground
truth's than the retrieved one's; then train decision (Linear on the [IMG0] hidden state) on the labels.
Saves OUT/model/ in Storyloom's GILL folder layout (Sources/Models/GILL/GILLModel.swift): config.json,
gill.safetensors, opt/ (the LLM with its embeddings resized for <|image|> and [IMG0..7]), clip/.
Resumable: phase 1 from OUT/checkpoints/gill.pt, labels from OUT/decision_labels.pt (in chunks), the
head from OUT/checkpoints/decision.pt; --restart starts over.
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
import storyworld_data as sw  # noqa: E402
from gill_reference import GILLReference  # noqa: E402
from diffusers import StableDiffusionPipeline  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoTokenizer, CLIPModel, OPTForCausalLM  # noqa: E402

GILL_TOKENS = ["<|image|>"] + ["[IMG%d]" % i for i in range(8)]


def gill_tokenizer(opt_folder):
    """OPT's tokenizer extended as GILL does (and as Storyloom's loader repeats): <|image|>, [IMG0..7]."""
    tok = AutoTokenizer.from_pretrained(opt_folder)
    tok.add_special_tokens({"cls_token": GILL_TOKENS[0]})
    tok.add_tokens(GILL_TOKENS[1:])
    return tok


class Batcher:
    """Builds padded input embeddings from segment lists: ("ids", [int], train_on) or ("image", pooled)."""

    def __init__(self, gill, img_ids, pad_id, device):
        self.gill, self.img_ids, self.pad_id, self.device = gill, img_ids, pad_id, device

    def weight(self):
        """The LLM's (tied) embedding matrix with the learned [IMG] rows in place (differentiable in them)."""
        w = self.gill.lm.get_input_embeddings().weight.detach()
        return w.index_copy(0, torch.tensor(self.img_ids, device=w.device), self.gill.input_embeddings.weight)

    def build(self, seqs):
        w = self.weight()
        rows, targets = [], []
        for segs in seqs:
            e, t = [], []
            for kind, value, train_on in segs:
                if kind == "ids":
                    ids = torch.tensor(value, device=self.device)
                    e.append(F.embedding(ids, w))
                    t += value if train_on else [-100] * len(value)
                else:
                    p = self.gill.visual_embeddings(value[None]).reshape(self.gill.args["n_visual_tokens"], -1)
                    e.append(p)
                    t += [-100] * p.shape[0]
            rows.append(torch.cat(e))
            targets.append(t)
        n = max(r.shape[0] for r in rows)
        emb = torch.zeros(len(rows), n, w.shape[1], device=self.device)
        mask = torch.zeros(len(rows), n, dtype=torch.long, device=self.device)
        tgt = torch.full((len(rows), n), -100, dtype=torch.long, device=self.device)
        for i, (r, t) in enumerate(zip(rows, targets)):
            emb[i, :r.shape[0]] = r
            mask[i, :r.shape[0]] = 1
            tgt[i, :len(t)] = torch.tensor(t, device=self.device)
        return emb, mask, tgt, w

    def run(self, seqs):
        emb, mask, tgt, w = self.build(seqs)
        hidden = self.gill.lm.model(inputs_embeds=emb, attention_mask=mask).last_hidden_state
        logits = hidden @ w.T
        lm = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=-100)
        return emb, hidden, lm


def caption_ids(tok, text, first=True):
    return tok(text if first else " " + text, add_special_tokens=False)["input_ids"]


def img_block(gill, batcher, tok, captions, device):
    """BOS, caption, [IMG0..7] for each caption: (lm loss, [IMG] hidden [B,8,E], [IMG] inputs [B,8,E])."""
    seqs = [[("ids", [tok.bos_token_id], False), ("ids", caption_ids(tok, c), True), ("ids", batcher.img_ids, True)] for c in captions]
    emb, hidden, lm = batcher.run(seqs)
    k = len(batcher.img_ids)
    starts = [1 + len(caption_ids(tok, c)) for c in captions]
    h = torch.stack([hidden[i, s:s + k] for i, s in enumerate(starts)])
    e = torch.stack([emb[i, s:s + k] for i, s in enumerate(starts)])
    return lm, h, e


def sd_targets(text_model, sd_tok, captions, device):
    ids = sd_tok(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt")["input_ids"].to(device)
    with torch.no_grad():
        return text_model(input_ids=ids).last_hidden_state


def contrastive(gill, h_img0, pooled):
    t = F.normalize(gill.ret_text_hidden_fcs[0](h_img0), dim=-1)
    i = F.normalize(gill.visual_fc(pooled), dim=-1)
    logits = t @ i.T * gill.logit_scale.exp()
    labels = torch.arange(len(t), device=t.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


@torch.no_grad()
def pooler_of(clip, u8, device, batch=256):
    return torch.cat([clip.vision_model(pixel_values=sw.clip_pixels(u8[i:i + batch]).to(device)).pooler_output
                      for i in range(0, len(u8), batch)])


@torch.no_grad()
def clip_image_features(clip, u8, device):
    return F.normalize(clip.visual_projection(pooler_of(clip, u8, device)), dim=-1)


@torch.no_grad()
def heads_for(gill, batcher, tok, captions, device, batch=64):
    """[IMG0] hidden states, retrieval embeddings and mapper outputs for captions."""
    h0, ret, gen = [], [], []
    for i in range(0, len(captions), batch):
        _, h, e = img_block(gill, batcher, tok, captions[i:i + batch], device)
        h0.append(h[:, 0])
        ret.append(F.normalize(gill.ret_text_hidden_fcs[0](h[:, 0]), dim=-1))
        gen.append(gill.gen_text_hidden_fcs[0](h, e))
    return torch.cat(h0), torch.cat(ret), torch.cat(gen)


@torch.no_grad()
def decision_labels(gill, batcher, tok, pipe, clip, captions, items, u8, pooled, device, args, path):
    """Label items 1 (generate) when SD's image from the mapper output beats the top retrieved image
    (ground truth excluded) in CLIP image similarity to the ground truth; cached in chunks at `path`."""
    done = torch.load(path) if os.path.exists(path) and not args.restart else {"index": [], "label": [], "margin": []}
    pool = F.normalize(gill.visual_fc(pooled), dim=-1)
    gt = clip_image_features(clip, u8, device)
    uncond = sd_targets(pipe.text_encoder, pipe.tokenizer, [""], device)
    todo = [i for i in items if i not in set(done["index"])]
    for c in range(0, len(todo), 32):
        chunk = todo[c:c + 32]
        _, ret, gen = heads_for(gill, batcher, tok, [captions[i] for i in chunk], device)
        sims = ret @ pool.T
        sims[torch.arange(len(chunk)), torch.tensor(chunk)] = -2   # leave the ground truth out of the pool
        retrieved = sims.argmax(1)
        images = pipe(prompt_embeds=gen, negative_prompt_embeds=uncond.expand(len(chunk), -1, -1),
                      num_inference_steps=args.eval_steps, guidance_scale=args.eval_guidance, output_type="np",
                      generator=torch.Generator().manual_seed(4321 + c), height=args.image_size, width=args.image_size).images
        gen_u8 = (images * 255).round().clip(0, 255).astype("uint8")
        g = clip_image_features(clip, gen_u8, device)
        s_gen = (g * gt[chunk]).sum(-1)
        s_ret = (gt[retrieved] * gt[chunk]).sum(-1)
        done["index"] += chunk
        done["label"] += (s_gen > s_ret).long().tolist()
        done["margin"] += (s_gen - s_ret).tolist()
        torch.save(done, path)
        print(f"decision labels {len(done['index'])}/{len(items)}: generate wins {sum(done['label'])}", flush=True)
    return done


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_common_args(ap, steps=4000, batch=32, lr=3e-4)
    ap.add_argument("--opt", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--sd", required=True)
    ap.add_argument("--stories", type=int, default=20000)
    ap.add_argument("--val-pairs", type=int, default=500)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--visual-tokens", type=int, default=4)
    ap.add_argument("--ret-dim", type=int, default=128)
    ap.add_argument("--mapper-dim", type=int, default=128)
    ap.add_argument("--mapper-heads", type=int, default=4)
    ap.add_argument("--mapper-layers", type=int, default=2)
    ap.add_argument("--mapper-ffn", type=int, default=512)
    ap.add_argument("--concat", type=float, default=0.5, help="probability of concatenating two captioning pairs")
    ap.add_argument("--gen-weight", type=float, default=1.0)
    ap.add_argument("--decision-samples", type=int, default=1000)
    ap.add_argument("--decision-val", type=int, default=100)
    ap.add_argument("--decision-steps", type=int, default=300)
    ap.add_argument("--eval-steps", type=int, default=25)
    ap.add_argument("--eval-guidance", type=float, default=4.0)
    args = ap.parse_args()
    device = sw.setup(args)

    train, val, train_u8, val_u8 = sw.scene_pairs(args)

    tok = gill_tokenizer(args.opt)
    img_ids = tok.convert_tokens_to_ids(GILL_TOKENS[1:])
    lm = OPTForCausalLM.from_pretrained(args.opt)
    lm.resize_token_embeddings(len(tok), mean_resizing=False)   # the [IMG] rows are GILL's own
    lm = lm.to(device).eval().requires_grad_(False)
    clip = CLIPModel.from_pretrained(args.clip).to(device).eval().requires_grad_(False)
    pipe = StableDiffusionPipeline.from_pretrained(args.sd, safety_checker=None, requires_safety_checker=False).to(device)
    pipe.set_progress_bar_config(disable=True)
    text_model = pipe.text_encoder.eval().requires_grad_(False)
    emb_dim = lm.get_input_embeddings().weight.shape[1]
    gill_args = {"opt_version": "storyworld-opt", "visual_encoder": "storyworld-clip", "n_visual_tokens": args.visual_tokens,
                 "ret_emb_dim": args.ret_dim, "gen_emb_dim": text_model.config.hidden_size, "text_emb_layers": [-1],
                 "text_fc_mode": "gill_mapper", "ret_text_fc_mode": "linear", "num_tokens": 8, "num_clip_tokens": 77,
                 "share_ret_gen": True, "norm_image_embed": "none", "retrieval_token_idx": img_ids, "gen_token_idx": img_ids,
                 "image_token": GILL_TOKENS[0], "llm_embed_dim": emb_dim, "clip_dim": clip.config.vision_config.hidden_size,
                 "mapper": {"dim": args.mapper_dim, "heads": args.mapper_heads, "layers": args.mapper_layers, "ffn": args.mapper_ffn}}
    torch.manual_seed(args.seed)
    gill = GILLReference(gill_args, lm, clip).to(device)
    with torch.no_grad():   # start the [IMG] rows at the mean embedding, as resized tokens are
        gill.input_embeddings.weight.copy_(lm.get_input_embeddings().weight[:len(tok) - 9].mean(0) + 0.01 * torch.randn(8, emb_dim))
    own = [p for n, p in gill.named_parameters() if not n.startswith(("lm.", "clip.", "decision."))]
    batcher = Batcher(gill, img_ids, tok.pad_token_id, device)
    captions = [p["text"] for p in train]
    pooled = pooler_of(clip, train_u8, device)
    print(f"{len(train)} training pairs, {len(val)} held-out; LLM {sum(p.numel() for p in lm.parameters()) / 1e6:.2f}M frozen, "
          f"GILL {sum(p.numel() for p in own) / 1e6:.2f}M trained", flush=True)

    # Phase 1.
    opt = torch.optim.AdamW(own, lr=args.lr, weight_decay=0.0)
    ckpt = sw.Checkpoint(args.out, "gill")
    step, elapsed = 0, 0.0
    if ckpt.exists() and not args.restart:
        step, elapsed, _ = ckpt.load({"gill": gill}, {"opt": opt})
    timer = sw.Timer(elapsed)
    log = sw.LossLog(args.out, "gill", step)
    gen = torch.Generator().manual_seed(args.seed * 17 + step)
    batches = sw.loop_batches(len(train), min(args.batch, len(train)), gen)
    gill.train()
    gill.lm.eval()
    gill.clip.eval()
    while step < args.steps:
        b = next(batches).tolist()
        caps = [captions[i] for i in b]
        partners = torch.randint(0, len(train), (len(b),), generator=gen).tolist()
        cap_seqs = []
        for i, j in zip(b, partners):
            segs = [("ids", [tok.bos_token_id], False)]
            if torch.rand((), generator=gen) < args.concat:
                segs += [("image", pooled[j], False), ("ids", caption_ids(tok, captions[j]), True)]
                segs += [("image", pooled[i], False), ("ids", caption_ids(tok, captions[i], first=False), True)]
            else:
                segs += [("image", pooled[i], False), ("ids", caption_ids(tok, captions[i]), True)]
            cap_seqs.append(segs)
        _, _, cap_loss = batcher.run(cap_seqs)
        ret_lm, h, e = img_block(gill, batcher, tok, caps, device)
        gen_loss = F.mse_loss(gill.gen_text_hidden_fcs[0](h, e), sd_targets(text_model, pipe.tokenizer, caps, device))
        ret_loss = contrastive(gill, h[:, 0], pooled[b])
        loss = cap_loss + ret_lm + ret_loss + args.gen_weight * gen_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(own, 1.0)
        opt.step()
        with torch.no_grad():
            gill.logit_scale.clamp_(0, math.log(100))
        step += 1
        if step % args.log_every == 0 or step == args.steps:
            log.log(step, loss=loss.item(), caption=cap_loss.item(), img_tokens=ret_lm.item(), retrieval=ret_loss.item(), generation=gen_loss.item())
        if step % args.ckpt_every == 0 or step == args.steps:
            ckpt.save(step, timer.elapsed(), {"gill": gill}, {"opt": opt})
    gill.eval()

    # Held-out metrics of phase 1.
    val_caps = [p["text"] for p in val]
    val_pooled = pooler_of(clip, val_u8, device)
    _, ret, gen_out = heads_for(gill, batcher, tok, val_caps, device)
    with torch.no_grad():
        sim = ret @ F.normalize(gill.visual_fc(val_pooled), dim=-1).T
        gen_mse = F.mse_loss(gen_out, sd_targets(text_model, pipe.tokenizer, val_caps, device)).item()
        _, _, val_cap = batcher.run([[("ids", [tok.bos_token_id], False), ("image", val_pooled[i], False),
                                      ("ids", caption_ids(tok, val_caps[i]), True)] for i in range(min(len(val), 128))])
        prompt = batcher.build([[("ids", [tok.bos_token_id], False), ("image", val_pooled[0], False)]])[0]
        sample = lm.generate(inputs_embeds=prompt, attention_mask=torch.ones(prompt.shape[:2], dtype=torch.long, device=device),
                             max_new_tokens=30, do_sample=False, bad_words_ids=[[i] for i in img_ids])
    recall = sw.recall_at(sim)
    caption_sample = tok.decode(sample[0], skip_special_tokens=True).strip()
    print(f"held-out retrieval {recall}, mapper MSE {gen_mse:.4f}, caption loss {val_cap.item():.3f}; caption of {val_caps[0]!r}: {caption_sample!r}", flush=True)

    # Phase 2: decision labels and head.
    dec_items = list(range(min(args.decision_samples, len(train))))
    labels = decision_labels(gill, batcher, tok, pipe, clip, captions, dec_items, train_u8, pooled, device, args, os.path.join(args.out, "decision_labels.pt"))
    h0, _, _ = heads_for(gill, batcher, tok, [captions[i] for i in labels["index"]], device)
    y = torch.tensor(labels["label"], device=device)
    dopt = torch.optim.AdamW(gill.decision.parameters(), lr=1e-3)
    dckpt = sw.Checkpoint(args.out, "decision")
    dstep, delapsed = 0, 0.0
    if dckpt.exists() and not args.restart:
        dstep, delapsed, _ = dckpt.load({"decision": gill.decision}, {"opt": dopt})
    dlog = sw.LossLog(args.out, "decision", dstep)
    # Class weights: labels are usually unbalanced (retrieval wins on a toy world).
    pos = float(y.float().mean()) if len(y) else 0.5
    weight = torch.tensor([1 / max(1 - pos, 1e-3), 1 / max(pos, 1e-3)], device=device) / 2
    while dstep < args.decision_steps:
        dloss = F.cross_entropy(gill.decision(h0), y, weight=weight)
        dopt.zero_grad(set_to_none=True)
        dloss.backward()
        dopt.step()
        dstep += 1
        if dstep % args.log_every == 0 or dstep == args.decision_steps:
            dlog.log(dstep, loss=dloss.item())
    dckpt.save(dstep, delapsed, {"decision": gill.decision}, {"opt": dopt})
    gill.eval()
    # Held-out decision accuracy: label held-out captions the same way (ground truth left out of a held-out pool).
    vlabels = decision_labels(gill, batcher, tok, pipe, clip, val_caps, list(range(min(args.decision_val, len(val)))), val_u8, val_pooled,
                              device, args, os.path.join(args.out, "decision_val_labels.pt"))
    vh0, _, _ = heads_for(gill, batcher, tok, [val_caps[i] for i in vlabels["index"]], device)
    with torch.no_grad():
        pred = gill.decision(vh0).argmax(-1).cpu()
    vy = torch.tensor(vlabels["label"])
    dec_acc = float((pred == vy).float().mean()) if len(vy) else float("nan")
    majority = max(float(vy.float().mean()), 1 - float(vy.float().mean())) if len(vy) else float("nan")

    # Save the Storyloom GILL folder.
    model_dir = os.path.join(args.out, "model")
    os.makedirs(model_dir, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in gill.gill_state_dict().items()}, os.path.join(model_dir, "gill.safetensors"))
    # Decision labels above are 1 = generate wins: the reverse of GILL's idx2dec (0 = gen), so say so.
    json.dump({**gill_args, "decision_classes": ["ret", "gen"]}, open(os.path.join(model_dir, "config.json"), "w"), indent=1)
    lm_out = copy.deepcopy(lm).cpu()
    with torch.no_grad():
        lm_out.get_input_embeddings().weight[img_ids] = gill.input_embeddings.weight.detach().cpu()
    lm_out.save_pretrained(os.path.join(model_dir, "opt"))
    for f in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(os.path.join(args.opt, f), os.path.join(model_dir, "opt", f))
    if os.path.exists(os.path.join(model_dir, "clip")):
        shutil.rmtree(os.path.join(model_dir, "clip"))
    shutil.copytree(args.clip, os.path.join(model_dir, "clip"))
    # The image decoder travels with the model (Storyloom reads a GILL folder's sd/), so the folder is
    # self-contained; identical files cost nothing extra in git.
    if os.path.exists(os.path.join(model_dir, "sd")):
        shutil.rmtree(os.path.join(model_dir, "sd"))
    shutil.copytree(args.sd, os.path.join(model_dir, "sd"), ignore=shutil.ignore_patterns("MODEL_CARD.md"))
    for root, _, files in os.walk(model_dir):
        for f in files:
            if f in ("generation_config.json", "MODEL_CARD.md") and root != model_dir:
                os.remove(os.path.join(root, f))
    sw.write_model_card(model_dir, "StoryWorld GILL", [
        ("Model", {"frozen": f"LLM {args.opt}, CLIP {args.clip}, SD {args.sd}",
                   "trained": f"{sum(p.numel() for p in own) / 1e6:.2f}M parameters (visual_embeddings with {args.visual_tokens} visual tokens, "
                              f"visual_fc, logit_scale, [IMG0..7] rows, ret_text_hidden_fcs to {args.ret_dim}, GILLMapper {gill_args['mapper']} to 77x{gill_args['gen_emb_dim']}) + decision head",
                   "[IMG] ids": img_ids}),
        ("Data", {"training world": f"seed {args.train_seed}: {args.stories} stories -> {len(train)} caption-image pairs (first story panels)",
                  "held-out world": f"seed {args.val_seed}: {len(val)} pairs", "evaluation seeds (never trained on)": "1-99"}),
        ("Phase 1", {"steps": step, "batch": args.batch, "optimizer": f"AdamW lr {args.lr}", "concatenated captioning pairs": args.concat,
                     "wall time": f"{timer.elapsed() / 60:.1f} min", "final logged losses": {k: v for k, v in log.last.items() if k not in ("stage", "step")}}),
        ("Phase 2 (decision)", {"labelled training captions": len(labels["index"]), "generate wins": sum(labels["label"]),
                                "labelling": f"SD DDIM {args.eval_steps} steps, guidance {args.eval_guidance}; trained-CLIP image similarity; ground truth left out of the retrieval pool",
                                "head steps": dstep, "final loss": dlog.last.get("loss")}),
        ("Held-out metrics", {"text→image retrieval recall@1": f"{recall['recall@1']:.3f} among {len(val)}",
                              "text→image retrieval recall@5": f"{recall['recall@5']:.3f}",
                              "mapper MSE to SD text-encoder states": f"{gen_mse:.4f}",
                              "captioning loss": f"{val_cap.item():.3f}",
                              "greedy caption": f"`{caption_sample}` (truth: `{val_caps[0]}`)",
                              "decision accuracy": f"{dec_acc:.3f} on {len(vy)} held-out labels (majority class {majority:.3f})"}),
        ("Run", {"machine": sw.machine(), "seed": args.seed, "command": "python " + " ".join(sys.argv)}),
    ])
    print("saved", model_dir, flush=True)


if __name__ == "__main__":
    main()
