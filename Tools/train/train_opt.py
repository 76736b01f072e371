#!/usr/bin/env python3
"""Stage 3: a small OPT language model on StoryWorld story and dialogue text.

    .venv/bin/python Tools/train/train_opt.py --out runs/opt [--steps 6000] [--device auto]

Text: each story as its five captions joined by spaces; each dialogue as its caption, then every
question and answer, joined by spaces — the way Storyloom's GILL steps join a context list. Each
sequence is `</s> text </s>` (OPT's tokenizer prepends `</s>` as BOS; the closing one teaches it to stop).
Tokenizer: a GPT-2-format byte-level BPE trained with `tokenizers` (vocab.json + merges.txt,
<s> <pad> </s> <unk> first, as OPT publishes it). Saves OUT/model/: a transformers OPTForCausalLM
folder with the tokenizer files. Resumable: rerun the same command; --restart starts over.
"""
import argparse
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import storyworld_data as sw  # noqa: E402
from transformers import AutoTokenizer, OPTConfig, OPTForCausalLM  # noqa: E402


def entry_texts(folder):
    """One text per entry (story or dialogue)."""
    out = []
    for e in sw.load_collection(folder):
        parts = [p["text"] for p in e["panels"]]
        for r in e.get("rounds", []):
            parts += [r["question"], r["answer"]]
        out.append(" ".join(parts))
    return out


def encode(tok, texts, max_len):
    eos = tok.eos_token_id
    seqs = [tok(t)["input_ids"][:max_len - 1] + [eos] for t in texts]   # tok adds the BOS </s>
    return seqs


def collate(seqs, pad):
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return ids, mask, labels


@torch.no_grad()
def perplexity(model, seqs, pad, device, batch=64):
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(seqs), batch):
        ids, mask, labels = collate(seqs[i:i + batch], pad)
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
        n = int((labels[:, 1:] != -100).sum())
        total += out.loss.item() * n
        count += n
    model.train()
    return math.exp(total / count)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_common_args(ap, steps=4000, batch=64, lr=1e-3)
    ap.add_argument("--stories", type=int, default=20000)
    ap.add_argument("--dialogues", type=int, default=20000)
    ap.add_argument("--val-entries", type=int, default=500, help="held-out stories and dialogues (each)")
    ap.add_argument("--vocab", type=int, default=1024, help="byte-level BPE vocabulary size")
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--positions", type=int, default=512)
    ap.add_argument("--warmup", type=int, default=200)
    args = ap.parse_args()
    device = sw.setup(args)

    # Text only: no images are rendered for this stage.
    train_dir = sw.make_world(os.path.join(args.data, f"text-{args.train_seed}-{args.stories}-{args.dialogues}"),
                              args.train_seed, args.stories, args.dialogues, "train", images=False)
    val_dir = sw.make_world(os.path.join(args.data, f"text-{args.val_seed}-{args.val_entries}-{args.val_entries}"),
                            args.val_seed, args.val_entries, args.val_entries, "validation", images=False)
    texts, val_texts = entry_texts(train_dir), entry_texts(val_dir)

    model_dir = os.path.join(args.out, "model")
    ckpt = sw.Checkpoint(args.out, "opt")
    resume = ckpt.exists() and not args.restart
    if not resume or not os.path.exists(os.path.join(model_dir, "vocab.json")):
        sw.train_gpt2_bpe(texts, args.vocab, model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    seqs, val_seqs = encode(tok, texts, args.positions), encode(tok, val_texts, args.positions)
    lengths = sorted(len(s) for s in seqs)
    print(f"{len(seqs)} training texts, {len(val_seqs)} held-out; vocabulary {len(tok)}; tokens per text median {lengths[len(lengths) // 2]}, max {lengths[-1]}", flush=True)

    config = OPTConfig(vocab_size=len(tok), hidden_size=args.hidden, word_embed_proj_dim=args.hidden,
                       num_hidden_layers=args.layers, ffn_dim=args.ffn, num_attention_heads=args.heads,
                       max_position_embeddings=args.positions, do_layer_norm_before=True, dropout=0.1,
                       attention_dropout=0.0, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id, enable_bias=True)
    model = OPTForCausalLM(config).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    sched = sw.warmup_cosine(opt, args.warmup, args.steps)
    step, elapsed = 0, 0.0
    if resume:
        step, elapsed, _ = ckpt.load({"model": model}, {"opt": opt, "sched": sched})
    timer = sw.Timer(elapsed)
    log = sw.LossLog(args.out, "opt", step)
    gen = torch.Generator().manual_seed(args.seed * 7 + step)
    batches = sw.loop_batches(len(seqs), min(args.batch, len(seqs)), gen)
    model.train()
    while step < args.steps:
        ids, mask, labels = collate([seqs[i] for i in next(batches).tolist()], tok.pad_token_id)
        loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        if step % args.log_every == 0 or step == args.steps:
            log.log(step, loss=loss.item(), lr=sched.get_last_lr()[0])
        if step % args.ckpt_every == 0 or step == args.steps:
            ckpt.save(step, timer.elapsed(), {"model": model}, {"opt": opt, "sched": sched})

    ppl = perplexity(model, val_seqs, tok.pad_token_id, device)
    model.eval()
    prompt = val_texts[0].split(". ")[0] + "."
    with torch.no_grad():
        sample = model.generate(**tok(prompt, return_tensors="pt").to(device), max_new_tokens=24, do_sample=False)
    continuation = tok.decode(sample[0], skip_special_tokens=True)
    print(f"held-out perplexity {ppl:.3f}; greedy: {continuation!r}", flush=True)
    model.cpu().save_pretrained(model_dir)
    for f in os.listdir(model_dir):
        if f in ("generation_config.json", "tokenizer.json"):
            os.remove(os.path.join(model_dir, f))
    sw.write_model_card(model_dir, "StoryWorld OPT", [
        ("Model", {"architecture": "transformers OPTForCausalLM (pre-LayerNorm, tied embeddings)",
                   "parameters": f"{n_params / 1e6:.2f}M", "size": f"{args.layers} layers, hidden {args.hidden}, {args.heads} heads, FFN {args.ffn}, {args.positions} positions",
                   "tokenizer": f"GPT-2-format byte-level BPE, {len(tok)} tokens"}),
        ("Data", {"training world": f"seed {args.train_seed}: {args.stories} stories, {args.dialogues} dialogues ({len(seqs)} texts)",
                  "held-out world": f"seed {args.val_seed}: {args.val_entries} stories, {args.val_entries} dialogues",
                  "evaluation seeds (never trained on)": "1-99"}),
        ("Training", {"loss": "causal LM cross-entropy", "steps": step, "batch": args.batch,
                      "optimizer": f"AdamW lr {args.lr}, wd 0.1, {args.warmup} warm-up steps, cosine decay", "dropout": 0.1,
                      "seed": args.seed, "wall time": f"{timer.elapsed() / 60:.1f} min", "machine": sw.machine(),
                      "final logged loss": log.last.get("loss"), "command": "python " + " ".join(sys.argv)}),
        ("Held-out metrics", {"perplexity per token": f"{ppl:.3f}", "greedy continuation of a held-out first sentence": f"`{continuation}`"}),
    ])
    print("saved", model_dir, flush=True)


if __name__ == "__main__":
    main()
