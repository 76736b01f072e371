#!/usr/bin/env python3
"""PyTorch side of `storyloom bench llm`: times a transformers OPTForCausalLM on the same weights
Storyloom loaded and prints JSON on stdout.

    bench_llm_reference.py --model DIR --threads N --reps R --prompt 5,17,... --decode T
    bench_llm_reference.py --random-config JSON --dtype bfloat16 --threads N --reps 1 --prompt ... --decode T

DIR is an OPTForCausalLM folder (config.json + model.safetensors, F16) written by the Swift
benchmark; the model runs in float32 like Storyloom. With --random-config the model is built in
memory from that OPTConfig JSON directly in --dtype (random init, nothing read from disk; the
OPT-6.7B bf16 row), and its logits are not returned (the Swift side's random values differ).
Every run reports its peak RSS (ru_maxrss) as peak_rss_bytes. Times the prefill of the prompt (use_cache,
logits of the last position only, as Storyloom's) and greedy per-token decoding with the KV cache
(seconds per token, best of R). Also returns the prefill's last-position logits and the decoded ids
so the benchmark can confirm both sides compute the same function.
"""
import argparse
import json
import math
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--random-config")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--decode", type=int, default=32)
    args = ap.parse_args()

    import resource

    import torch
    import transformers
    from transformers import OPTConfig, OPTForCausalLM

    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    if args.random_config:
        # Built directly in dtype: an OPT-6.7B in float32 first would need 27 GB.
        torch.set_default_dtype(dtype)
        model = OPTForCausalLM(OPTConfig(**json.loads(args.random_config)))
        torch.set_default_dtype(torch.float32)
        info = {}
    else:
        model, info = OPTForCausalLM.from_pretrained(args.model, dtype=dtype, output_loading_info=True)
    model.eval()
    ids = torch.tensor([[int(i) for i in args.prompt.split(",")]])
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads(),
           "dtype": args.dtype,
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
           "missing_keys": sorted(info.get("missing_keys", [])), "unexpected_keys": sorted(info.get("unexpected_keys", []))}
    prefill, decode = [], []
    with torch.inference_mode():
        model(input_ids=ids, use_cache=True, logits_to_keep=1)  # warm-up
        for _ in range(args.reps):
            start = time.perf_counter()
            res = model(input_ids=ids, use_cache=True, logits_to_keep=1)
            prefill.append(time.perf_counter() - start)
            # Non-finite logits become null: JSON has no NaN, and the benchmark reports them as a mismatch.
            if not args.random_config:
                out["prefill_last_logits"] = [v if math.isfinite(v) else None for v in res.logits[0, -1].float().tolist()]
            past, logits, decoded = res.past_key_values, res.logits[0, -1], []
            mask = torch.ones(1, ids.shape[1], dtype=torch.long)
            start = time.perf_counter()
            for _ in range(args.decode):
                nxt = int(torch.argmax(logits))
                decoded.append(nxt)
                mask = torch.cat([mask, torch.ones(1, 1, dtype=torch.long)], 1)
                res = model(input_ids=torch.tensor([[nxt]]), attention_mask=mask, past_key_values=past, use_cache=True)
                past, logits = res.past_key_values, res.logits[0, -1]
            decode.append((time.perf_counter() - start) / args.decode)
            out["decoded_ids"] = decoded
    out["prefill_seconds"], out["decode_seconds_per_token"] = min(prefill), min(decode)
    out["prefill_all"], out["decode_all"] = prefill, decode
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    json.dump(out, sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()
