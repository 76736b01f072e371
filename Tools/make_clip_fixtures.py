#!/usr/bin/env python3
"""Golden fixtures for Storyloom's CLIP parity tests (Tests/ModelsTests/Fixtures/clip/).

Reference stack: torch + transformers + tokenizers + safetensors + Pillow, seed fixed.
Writes, per tiny random CLIP config, a model folder as transformers publishes one
(config.json, model.safetensors or shards + index, vocab.json, merges.txt,
preprocessor_config.json) and `expected.safetensors` / `expected.json` with inputs and outputs.

    .venv/bin/python Tools/make_clip_fixtures.py [--clip-bpe path/to/bpe_simple_vocab_16e6.txt.gz]

With --clip-bpe (from the open_clip_torch wheel: `pip download --no-deps open_clip_torch`),
also writes the real CLIP vocabulary as vocab.json + merges.txt with reference token ids.
"""
import argparse
import gzip
import json
import os
import shutil
import sys

import numpy as np
import PIL
import safetensors
import tokenizers
import torch
import transformers
from PIL import Image
from safetensors.torch import save_file
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import (CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTextModelWithProjection,
                          CLIPTokenizer, CLIPVisionModelWithProjection)
from transformers.models.bert.tokenization_bert_legacy import BasicTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelsTests", "Fixtures", "clip")
CLIP_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""

TRAINING_TEXT = """
A red ball rolls across the green field. The blue box sits next to a tall tree.
It is night; the stars shine over the snowy house. A small yellow star appears in the sky!
They're walking to the beach, where the waves are high. She's got 3 apples and 12 oranges.
We'll see the big house tomorrow. I'm sure it isn't raining. You've been here before, haven't you?
The photo shows two dogs playing with a frisbee in the park at sunset.
A close-up picture of a cat sleeping on a sofa, next to a cup of coffee.
An astronaut rides a horse on the moon, digital art, high quality, 4k.
"""

CORPUS = [
    "a photo of a cat",
    "A Red BALL rolls to the right.",
    "It's 12:30 and they're late -- aren't they?",
    "The year 2023, 3.14159 and 1,000,000 items!!!",
    "Café déjà vu: naïve façade, über-cool Straße",
    "emoji 🙂🚀 and symbols #hashtag @user $5 100% (brackets) [x] {y}",
    "tabs\tand\nnewlines   and    spaces",
    "日本語のテキスト and 中文 mixed",
    "control\u0007chars\u0000here\u200bzero-width",
    "don't won't can't I'll we've you'd",
    "  leading and trailing   ",
    "",
    " ".join(["word%d" % i for i in range(120)]),
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "ÀÉÎÕÜ ǅ ΣΑΣ İstanbul",
]


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_vocab(folder, merges):
    """CLIP's layout: 256 byte symbols, the same with </w>, one token per merge, then the specials."""
    base = bytes_to_unicode()
    vocab = base + [b + "</w>" for b in base] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({tok: i for i, tok in enumerate(vocab)}, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    return len(vocab)


def train_merges(vocab_size):
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>", continuing_subword_prefix=""))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  end_of_word_suffix="</w>", show_progress=False, special_tokens=[])
    tok.train_from_iterator([line for line in TRAINING_TEXT.splitlines() if line] * 4, trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in merges]


def reference_ids(folder, texts):
    """transformers' CLIPTokenizer on text cleaned as its ftfy-less path does (BasicTokenizer)."""
    tok = CLIPTokenizer(vocab=json.load(open(os.path.join(folder, "vocab.json"), encoding="utf-8")),
                        merges=[tuple(l.rstrip("\n").split(" ")) for l in open(os.path.join(folder, "merges.txt"), encoding="utf-8").readlines()[1:]])
    basic = BasicTokenizer(do_lower_case=True, strip_accents=False, do_split_on_punc=False)
    cleaned = [" ".join(basic.tokenize(t)) for t in texts]
    ids = tok(cleaned, padding="max_length", max_length=77, truncation=True)["input_ids"]
    return cleaned, ids


def make_images(folder):
    rng = np.random.default_rng(7)
    os.makedirs(folder, exist_ok=True)
    specs = [("gradient_40x30.png", 40, 30, "RGB"), ("noise_23x57.png", 23, 57, "RGBA"), ("grey_33x33.png", 33, 33, "L")]
    images = []
    for name, w, h, mode in specs:
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), (xx + yy) * 127 / (w + h)], -1)
        arr = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
        if mode == "RGBA":
            arr = np.concatenate([arr, rng.integers(0, 256, (h, w, 1), dtype=np.uint8)], -1)
        if mode == "L":
            arr = arr[..., 0]
        img = Image.fromarray(arr, mode)
        img.save(os.path.join(folder, name))
        images.append((name, Image.open(os.path.join(folder, name))))
    return images


def save_processor(folder, size):
    proc = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    proc.save_pretrained(folder)
    return proc


def clip_model(folder, spec, vocab_size, bos, eos):
    text = dict(vocab_size=vocab_size, hidden_size=spec["width"], intermediate_size=spec["width"] * 2,
                num_hidden_layers=spec["layers"], num_attention_heads=spec["heads"], max_position_embeddings=77,
                hidden_act=spec["act"], projection_dim=spec["proj"], bos_token_id=bos,
                eos_token_id=spec.get("eos_token_id", eos), pad_token_id=eos, layer_norm_eps=1e-5)
    vision = dict(hidden_size=spec["vwidth"], intermediate_size=spec["vwidth"] * 3, num_hidden_layers=spec["vlayers"],
                  num_attention_heads=spec["vheads"], image_size=spec["image"], patch_size=spec["patch"],
                  hidden_act=spec["act"], projection_dim=spec["proj"], layer_norm_eps=spec.get("veps", 1e-5))
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=spec["proj"])
    model = CLIPModel(config).eval()
    # Non-trivial LayerNorm affine and biases, so a mix-up of weight names cannot pass.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    return model


def run_model(model, pixel_values, input_ids):
    with torch.no_grad():
        v = model.vision_model(pixel_values=pixel_values)
        t = model.text_model(input_ids=input_ids)
        return {
            "vision_pooler": v.pooler_output.contiguous(),
            "image_embeds": model.visual_projection(v.pooler_output).contiguous(),
            "text_pooler": t.pooler_output.contiguous(),
            "text_embeds": model.text_projection(t.pooler_output).contiguous(),
            "text_last_hidden_state": t.last_hidden_state.contiguous(),
        }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip-bpe", help="bpe_simple_vocab_16e6.txt.gz from open_clip_torch")
    args = ap.parse_args()
    torch.manual_seed(1234)
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "safetensors": safetensors.__version__, "pillow": PIL.__version__, "python": sys.version.split()[0]}

    images = make_images(os.path.join(ROOT, "images"))
    merges = train_merges(700)
    specs = {
        # width 32, 2 layers, patch 4, image 16, quick_gelu, eos_token_id = <|endoftext|>, one F32 file.
        "tiny_a": dict(width=32, layers=2, heads=2, vwidth=32, vlayers=2, vheads=2, image=16, patch=4, act="quick_gelu", proj=24),
        # width 48, 3 layers, patch 8, image 32, exact gelu, legacy eos_token_id = 2, F16 shards + index.
        "tiny_b": dict(width=48, layers=3, heads=4, vwidth=48, vlayers=3, vheads=3, image=32, patch=8, act="gelu", proj=40,
                       eos_token_id=2, veps=1e-6),
    }
    for name, spec in specs.items():
        folder = os.path.join(ROOT, name)
        os.makedirs(folder)
        vocab_size = write_vocab(folder, merges)
        bos, eos = vocab_size - 2, vocab_size - 1
        model = clip_model(folder, spec, vocab_size, bos, eos)
        if name == "tiny_b":
            # Store F16 and compute the reference with the rounded weights, as a loader would see them.
            model = model.half().float()
            model.save_pretrained(folder, max_shard_size="150KB")
            for f in os.listdir(folder):
                if f.endswith(".safetensors"):
                    from safetensors.torch import load_file
                    sd = load_file(os.path.join(folder, f))
                    save_file({k: v.half() for k, v in sd.items()}, os.path.join(folder, f), metadata={"format": "pt"})
        else:
            model.save_pretrained(folder)
            # Older exports carry the position_ids buffers (I64); loaders must accept and ignore them.
            from safetensors.torch import load_file
            sd = load_file(os.path.join(folder, "model.safetensors"))
            sd["text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
            sd["vision_model.embeddings.position_ids"] = torch.arange((spec["image"] // spec["patch"]) ** 2 + 1).unsqueeze(0)
            save_file(sd, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
        proc = save_processor(folder, spec["image"])
        pixel_values = torch.from_numpy(np.stack([proc(img, return_tensors="np")["pixel_values"][0] for _, img in images]))

        cleaned, ids = reference_ids(folder, CORPUS)
        text_ids = torch.tensor(ids[:4])
        # Raw-id inputs where the highest id is not the first <|endoftext|>, so the two pooling rules differ.
        g = torch.Generator().manual_seed(5)
        raw = torch.randint(0, vocab_size - 2, (2, 77), generator=g)
        raw[:, 0] = bos
        raw[0, 9] = eos
        raw[0, 10:] = eos
        raw[1, 30] = eos
        raw[1, 40] = bos  # a higher id than everything but eos, after the eos
        raw[1, 50] = eos
        expected = {"pixel_values": pixel_values.float().contiguous()}
        for k, v in run_model(model, pixel_values, text_ids).items():
            expected[k] = v
        for k, v in run_model(model, pixel_values, raw).items():
            if k.startswith("text"):
                expected["raw_" + k] = v
        save_file(expected, os.path.join(folder, "expected.safetensors"))
        meta = {"versions": versions, "images": [n for n, _ in images], "texts": CORPUS[:4], "corpus": CORPUS,
                "cleaned_corpus": cleaned, "corpus_ids": ids, "text_ids": ids[:4], "raw_ids": raw.tolist(),
                "tolerance": 1e-4}
        with open(os.path.join(folder, "expected.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False, indent=0)

        if name == "tiny_a":
            # The single-tower layouts, sharing tiny_a's weights.
            vis = CLIPVisionModelWithProjection(model.config.vision_config).eval()
            vis.vision_model.load_state_dict(model.vision_model.state_dict())
            vis.visual_projection.load_state_dict(model.visual_projection.state_dict())
            vis.save_pretrained(os.path.join(ROOT, "tiny_a_vision"))
            txt = CLIPTextModelWithProjection(model.config.text_config).eval()
            txt.text_model.load_state_dict(model.text_model.state_dict())
            txt.text_projection.load_state_dict(model.text_projection.state_dict())
            txt.save_pretrained(os.path.join(ROOT, "tiny_a_text"))
            for sub in ("tiny_a_text",):
                for f in ("vocab.json", "merges.txt"):
                    shutil.copy(os.path.join(folder, f), os.path.join(ROOT, sub, f))
            save_processor(os.path.join(ROOT, "tiny_a_vision"), spec["image"])

    if args.clip_bpe:
        folder = os.path.join(ROOT, "tokenizer_real")
        os.makedirs(folder)
        lines = gzip.open(args.clip_bpe).read().decode("utf-8").split("\n")
        real_merges = [tuple(l.split()) for l in lines[1:49152 - 256 - 2 + 1]]
        write_vocab(folder, real_merges)
        cleaned, ids = reference_ids(folder, CORPUS)
        with open(os.path.join(folder, "expected.json"), "w", encoding="utf-8") as f:
            json.dump({"versions": versions, "corpus": CORPUS, "cleaned_corpus": cleaned, "corpus_ids": ids}, f,
                      ensure_ascii=False, indent=0)


if __name__ == "__main__":
    main()
