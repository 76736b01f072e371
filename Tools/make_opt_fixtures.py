#!/usr/bin/env python3
"""Golden fixtures for Storyloom's GPT-2 tokenizer and OPT parity tests (Tests/ModelsTests/Fixtures/opt/).

Reference stack: torch + transformers (OPTForCausalLM, AutoTokenizer) + tokenizers, seeds fixed.

    .venv/bin/python Tools/make_opt_fixtures.py

Writes:
  tokenizer/   a tiny byte-level BPE trained with `tokenizers` and saved as OPT publishes its
               tokenizer (vocab.json with <s> <pad> </s> <unk> first, merges.txt, tokenizer_config.json),
               plus corpus.json: the test corpus and transformers' ids for it (AutoTokenizer, which
               prepends </s> as BOS) after adding GILL's tokens <|image|>, [IMG0]..[IMG7].
  pre/         tiny OPT, pre-LayerNorm, word_embed_proj_dim < hidden (project_in/out), float32.
  post/        tiny OPT, post-LayerNorm (opt-350m style, no final_layer_norm), stored float16.
  each model folder also holds expected.safetensors + expected.json: prompt ids, full-forward
  logits, and a greedy continuation.
  bf16/        written by make_opt_bf16_fixture.py, called at the end (the folder is wiped first).
"""
import json
import os
import shutil

import safetensors
import tokenizers
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, OPTConfig, OPTForCausalLM
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelsTests", "Fixtures", "opt")
GILL_TOKENS = ["<|image|>"] + ["[IMG%d]" % i for i in range(8)]

TRAINING_TEXT = """
A red ball rolls across the green field. The blue box sits next to a tall tree.
It is night; the stars shine over the snowy house. A small yellow star appears in the sky!
They're walking to the beach, where the waves are high. She's got 3 apples and 12 oranges.
We'll see the big house tomorrow. I'm sure it isn't raining. You've been here before, haven't you?
The photo shows two dogs playing with a frisbee in the park at sunset.
It rolls to the right. Then it stops next to the box. The star grows bigger.
"""

CORPUS = [
    "A red ball rolls to the right.",
    "It's 12:30 and they're late -- aren't they?",
    "The year 2023, 3.14159 and 1,000,000 items!!!",
    "Café déjà vu: naïve façade, über-cool Straße",
    "emoji 🙂🚀 and symbols #hashtag @user $5 100% (brackets)",
    "tabs\tand\nnewlines   and    spaces\n\n",
    "日本語のテキスト and 中文 mixed",
    "don't won't can't I'll we've you'd DON'T",
    "  leading and trailing   ",
    "",
    "a picture <|image|> then [IMG0][IMG1] text[IMG7]end",
    "x" * 40 + " supercalifragilistic",
]


def train_tokenizer(folder):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([l for l in TRAINING_TEXT.splitlines() if l] * 4, trainer)
    os.makedirs(folder, exist_ok=True)
    tok.model.save(folder)  # vocab.json + merges.txt
    config = {"tokenizer_class": "GPT2Tokenizer", "add_bos_token": True, "add_prefix_space": False,
              "bos_token": "</s>", "eos_token": "</s>", "unk_token": "</s>", "pad_token": "<pad>",
              "errors": "replace", "model_max_length": 1000000000000000019884624838656}
    json.dump(config, open(os.path.join(folder, "tokenizer_config.json"), "w"), indent=1)
    json.dump({"bos_token": "</s>", "eos_token": "</s>", "unk_token": "</s>", "pad_token": "<pad>"},
              open(os.path.join(folder, "special_tokens_map.json"), "w"), indent=1)
    return folder


def gill_tokenizer(folder):
    """The tokenizer as GILL extends it: <|image|> as a special token, then [IMG0]..[IMG7]."""
    tok = AutoTokenizer.from_pretrained(folder)
    tok.add_special_tokens({"cls_token": GILL_TOKENS[0]})
    for t in GILL_TOKENS[1:]:
        tok.add_tokens(t)
    return tok


def make_opt(folder, tok, spec, dtype, seed):
    torch.manual_seed(seed)
    config = OPTConfig(vocab_size=len(tok), hidden_size=spec["hidden"], word_embed_proj_dim=spec["proj"],
                       num_hidden_layers=2, ffn_dim=spec["ffn"], num_attention_heads=4,
                       max_position_embeddings=64, do_layer_norm_before=spec["pre"], dropout=0.0,
                       pad_token_id=1, bos_token_id=2, eos_token_id=2)
    model = OPTForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():  # wider than init_std 0.02 so the tiny model's logits are not all ~0
            p.copy_(torch.randn_like(p) * 0.3)
        model.to(dtype)
    model.save_pretrained(folder)
    model = model.float()
    ids = tok("A red ball rolls to the right. It stops")["input_ids"]
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
        greedy = model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False,
                                eos_token_id=None, pad_token_id=1)[0, len(ids):].tolist()
    save_file({"logits": out.logits[0].contiguous(), "last_hidden": out.hidden_states[-1][0].contiguous()},
              os.path.join(folder, "expected.safetensors"))
    json.dump({"prompt_ids": ids, "greedy_ids": greedy, "torch": torch.__version__,
               "transformers": transformers.__version__}, open(os.path.join(folder, "expected.json"), "w"))


def main():
    shutil.rmtree(ROOT, ignore_errors=True)
    folder = train_tokenizer(os.path.join(ROOT, "tokenizer"))
    tok = gill_tokenizer(folder)
    base = AutoTokenizer.from_pretrained(folder)
    corpus = {"texts": CORPUS, "ids": [tok(t)["input_ids"] for t in CORPUS],
              "base_ids": [base(t)["input_ids"] for t in CORPUS],
              "added": {t: tok.convert_tokens_to_ids(t) for t in GILL_TOKENS},
              "decoded": [tok.decode(tok(t)["input_ids"][1:]) for t in CORPUS],
              "tokenizers": tokenizers.__version__, "transformers": transformers.__version__}
    json.dump(corpus, open(os.path.join(folder, "corpus.json"), "w", encoding="utf-8"), ensure_ascii=False, indent=0)
    for name, spec, dtype in [("pre", {"hidden": 32, "proj": 16, "ffn": 64, "pre": True}, torch.float32),
                              ("post", {"hidden": 32, "proj": 32, "ffn": 48, "pre": False}, torch.float16)]:
        out = os.path.join(ROOT, name)
        make_opt(out, tok, spec, dtype, seed=len(name))
        for f in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]:
            shutil.copy(os.path.join(folder, f), out)
    import make_opt_bf16_fixture
    make_opt_bf16_fixture.main()
    print("wrote", ROOT)


if __name__ == "__main__":
    main()
