#!/usr/bin/env python3
"""The bf16 OPT fixture for Storyloom's half-precision parity test (Tests/ModelsTests/Fixtures/opt/bf16/).

Reference stack: torch + transformers (OPTForCausalLM), seed fixed; run after make_opt_fixtures.py
(it reuses that script's tokenizer, and that script calls this one at its end):

    .venv/bin/python Tools/make_opt_bf16_fixture.py

A tiny pre-LN OPT with project_in/out, head_dim 12 (so the query scale 12^-0.5 is not a power of
two and cannot be folded into bf16 weights exactly), saved in bfloat16. expected.safetensors holds
the prompt's logits and last hidden states twice:
  logits_bf16 / last_hidden_bf16   transformers running the model in bfloat16 (activations rounded
                                   to bf16 after every op: what GILL's published setup computes);
  logits_f32 / last_hidden_f32     the same stored weights widened to float32 (model.float()), the
                                   function Storyloom computes on bf16 weights.
expected.json holds the prompt ids, greedy continuations of both, and max |bf16 - f32| of the logits
(how far bf16 arithmetic alone moves them), so the test can state its tolerance against it.
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoTokenizer, OPTConfig, OPTForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_opt_fixtures import ROOT, gill_tokenizer  # noqa: E402

PROMPT = "A red ball rolls to the right. It stops next to the blue box"


def main():
    tok = gill_tokenizer(os.path.join(ROOT, "tokenizer"))
    folder = os.path.join(ROOT, "bf16")
    torch.manual_seed(7)
    config = OPTConfig(vocab_size=len(tok), hidden_size=48, word_embed_proj_dim=32, num_hidden_layers=2, ffn_dim=96,
                       num_attention_heads=4, max_position_embeddings=64, do_layer_norm_before=True, dropout=0.0,
                       pad_token_id=1, bos_token_id=2, eos_token_id=2)
    model = OPTForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():  # wider than init_std 0.02 so the tiny model's logits are not all ~0
            p.copy_(torch.randn_like(p) * 0.3)
    model = model.to(torch.bfloat16)
    model.save_pretrained(folder)
    for f in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]:
        with open(os.path.join(ROOT, "tokenizer", f), "rb") as src, open(os.path.join(folder, f), "wb") as dst:
            dst.write(src.read())
    ids = tok(PROMPT)["input_ids"]
    expected, meta = {}, {"prompt_ids": ids, "torch": torch.__version__, "transformers": transformers.__version__}
    for name, m in [("bf16", model), ("f32", OPTForCausalLM.from_pretrained(folder, dtype=torch.float32).eval())]:
        with torch.no_grad():
            out = m(torch.tensor([ids]), output_hidden_states=True)
            greedy = m.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False,
                                eos_token_id=None, pad_token_id=1)[0, len(ids):].tolist()
        expected["logits_" + name] = out.logits[0].float().contiguous()
        expected["last_hidden_" + name] = out.hidden_states[-1][0].float().contiguous()
        meta["greedy_ids_" + name] = greedy
    meta["max_abs_logits_bf16_vs_f32"] = float((expected["logits_bf16"] - expected["logits_f32"]).abs().max())
    meta["max_abs_logits_f32"] = float(expected["logits_f32"].abs().max())
    save_file(expected, os.path.join(folder, "expected.safetensors"))
    json.dump(meta, open(os.path.join(folder, "expected.json"), "w"))
    print("wrote", folder, json.dumps({k: v for k, v in meta.items() if k.startswith(("greedy", "max"))}))


if __name__ == "__main__":
    main()
