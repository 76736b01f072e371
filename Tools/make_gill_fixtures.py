#!/usr/bin/env python3
"""Golden fixtures for Storyloom's GILL parity tests (Tests/ModelsTests/Fixtures/gill/).

    .venv/bin/python Tools/make_opt_fixtures.py     # first: the tiny tokenizer
    .venv/bin/python Tools/make_gill_fixtures.py

Writes:
  tiny/        a Storyloom GILL model folder (the layout the Swift loader reads):
                 config.json        GILL's model_args.json fields + llm_embed_dim, clip_dim, mapper sizes
                 gill.safetensors   the GILL parts (names in Tools/gill_reference.py), float32
                 opt/               transformers OPTForCausalLM folder + tokenizer (vocab.json, merges.txt, …)
                 clip/              transformers CLIPVisionModel folder + preprocessor_config.json
  expected.safetensors / expected.json   inputs and reference outputs (Tools/gill_reference.py).
  torch/small.pth.tar + small_expected.safetensors   a torch.save file with f16/bf16 storages,
               a transposed view, a shared storage and `module.` prefixes, for the .pth.tar reader.

    .venv/bin/python Tools/make_gill_fixtures.py example   # only the example below (after make_sd_fixtures.py)

Examples/models/tiny-gill/   a random GILL folder for the workflows: 1024 positions (5 StoryWorld captions and
               4 images, or a caption and 10 dialogue rounds, fit), gen_emb_dim = tiny-sd's cross_attention_dim,
               and sd/ (a copy of Examples/models/tiny-sd) as its image decoder. Its reference generation
               (GILLMapper prompt embeddings → diffusers StableDiffusionPipeline(prompt_embeds=…)) goes to
               Fixtures/gill/generate.safetensors + generate.json.
"""
import json
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoTokenizer, CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection, OPTConfig, OPTForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gill_reference import GILLReference  # noqa: E402

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelsTests", "Fixtures")
ROOT = os.path.join(FIX, "gill")


def randomize(module, std):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * std)


def tokenizer():
    tok = AutoTokenizer.from_pretrained(os.path.join(FIX, "opt", "tokenizer"))
    tok.add_special_tokens({"cls_token": "<|image|>"})
    for i in range(8):
        tok.add_tokens("[IMG%d]" % i)
    return tok


def torch_small():
    folder = os.path.join(ROOT, "torch")
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(5)
    base = torch.randn(6, 4)
    shared = torch.randn(10)
    sd = {"module.linear.weight": base.t(),                       # strided view
          "module.half.weight": torch.randn(3, 5).half(),
          "module.bf16.bias": torch.randn(7).bfloat16(),
          "module.shared_a": shared[2:6],                          # views into one storage
          "module.shared_b": shared[5:].view(5, 1),
          "module.scalar": torch.tensor(1.5)}
    torch.save({"state_dict": sd, "epoch": 3}, os.path.join(folder, "small.pth.tar"))
    save_file({k[len("module."):]: v.float().clone().contiguous() for k, v in sd.items()},
              os.path.join(folder, "small_expected.safetensors"))


def main():
    shutil.rmtree(ROOT, ignore_errors=True)
    folder = os.path.join(ROOT, "tiny")
    os.makedirs(folder)
    torch_small()
    tok = tokenizer()
    img_ids = [tok.convert_tokens_to_ids("[IMG%d]" % i) for i in range(8)]
    torch.manual_seed(11)
    lm = OPTForCausalLM(OPTConfig(vocab_size=len(tok), hidden_size=32, word_embed_proj_dim=32, num_hidden_layers=2,
                                  ffn_dim=64, num_attention_heads=4, max_position_embeddings=96, dropout=0.0,
                                  pad_token_id=1, bos_token_id=2, eos_token_id=2)).eval()
    randomize(lm, 0.3)
    # WithProjection: transformers 5 saves a bare CLIPVisionModel without the vision_model. prefix.
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                                            image_size=32, patch_size=8, projection_dim=16)).eval()
    randomize(clip, 0.2)
    args = {"opt_version": "opt", "visual_encoder": "clip", "n_visual_tokens": 2, "ret_emb_dim": 12, "gen_emb_dim": 20,
            "text_emb_layers": [-1], "text_fc_mode": "gill_mapper", "ret_text_fc_mode": "linear", "num_tokens": 8,
            "num_clip_tokens": 77, "share_ret_gen": True, "norm_image_embed": "none",
            "retrieval_token_idx": img_ids, "gen_token_idx": img_ids, "image_token": "<|image|>",
            "llm_embed_dim": 32, "clip_dim": 24, "mapper": {"dim": 16, "heads": 4, "layers": 2, "ffn": 32}}
    gill = GILLReference(args, lm, clip).eval()
    torch.manual_seed(12)
    for name in ["visual_embeddings", "visual_fc", "ret_text_hidden_fcs", "gen_text_hidden_fcs", "decision"]:
        randomize(getattr(gill, name), 0.3)
    with torch.no_grad():
        gill.input_embeddings.weight.copy_(torch.randn(8, 32) * 0.3)
        gill.input_embeddings.weight[0] *= float(os.environ.get("IMG0_SCALE", "1.7"))  # a strong [IMG0] row so greedy decoding reaches it in the fixture
    lm.save_pretrained(os.path.join(folder, "opt"))   # rows of the [IMG] tokens here are NOT GILL's
    for f in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(os.path.join(FIX, "opt", "tokenizer", f), os.path.join(folder, "opt"))
    clip.save_pretrained(os.path.join(folder, "clip"))
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(os.path.join(folder, "clip"))
    save_file({k: v.contiguous() for k, v in gill.gill_state_dict().items()}, os.path.join(folder, "gill.safetensors"))
    json.dump(args, open(os.path.join(folder, "config.json"), "w"), indent=1)
    for f in os.listdir(folder):
        if f == "generation_config.json":
            os.remove(os.path.join(folder, f))

    gill.install_img_rows()
    torch.manual_seed(13)
    pixels = torch.randn(2, 3, 32, 32)
    caption_ids = tok("A red ball rolls to the right.")["input_ids"]
    after_ids = tok(" It stops", add_special_tokens=False)["input_ids"]
    out, meta = {"pixel_values": pixels}, {"caption_ids": caption_ids, "after_ids": after_ids, "img_ids": img_ids,
                                           "torch": torch.__version__, "transformers": transformers.__version__}
    with torch.no_grad():
        out["pooler"] = gill.pooler(pixels)
        out["visual_prefix"] = gill.visual_prefix(pixels)
        image_ret = gill.image_retrieval_embedding(pixels)
        out["image_ret"] = image_ret
        # Interleaved: caption ids (BOS first), image 0 as visual tokens, more text.
        embs = gill.interleaved([("ids", caption_ids), ("image", pixels[:1]), ("ids", after_ids)])
        logits, hidden = gill.run(embs)
        out["interleaved_logits"], out["interleaved_hidden"] = logits, hidden
        # Forced [IMG] tokens after the caption: retrieval embedding, scores, prompt embeddings, decision.
        forced = torch.cat([gill.embed_ids(caption_ids), gill.embed_ids(img_ids)], 0)
        h = gill.heads(forced, len(caption_ids))
        out["ret_embedding"], out["prompt_embeds"], out["decision"] = h["ret_embedding"], h["prompt_embeds"], h["decision"]
        out["scores"] = gill.scores(h["ret_embedding"], image_ret)
        # Greedy generation with the [IMG] rule, from an interleaved prompt.
        prompt = gill.interleaved([("image", pixels[1:2]), ("ids", caption_ids[1:])])
        prompt = torch.cat([gill.embed_ids(caption_ids[:1]), prompt], 0)
        meta["greedy_ids"] = gill.generate_greedy(prompt, 10)
        meta["greedy_prompt"] = "BOS, image 1, caption without BOS"
    print("greedy:", meta["greedy_ids"], "IMG0 reached:", img_ids[0] in meta["greedy_ids"])
    save_file({k: v.contiguous().float() for k, v in out.items()}, os.path.join(ROOT, "expected.safetensors"))
    json.dump(meta, open(os.path.join(ROOT, "expected.json"), "w"))
    print("wrote", ROOT)


EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Examples", "models", "tiny-gill")
TINY_SD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Examples", "models", "tiny-sd")


def example():
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    shutil.rmtree(EXAMPLE, ignore_errors=True)
    os.makedirs(EXAMPLE)
    shutil.copytree(TINY_SD, os.path.join(EXAMPLE, "sd"))
    cross = json.load(open(os.path.join(TINY_SD, "unet", "config.json")))["cross_attention_dim"]
    tok = tokenizer()
    img_ids = [tok.convert_tokens_to_ids("[IMG%d]" % i) for i in range(8)]
    torch.manual_seed(21)
    lm = OPTForCausalLM(OPTConfig(vocab_size=len(tok), hidden_size=32, word_embed_proj_dim=32, num_hidden_layers=2,
                                  ffn_dim=64, num_attention_heads=4, max_position_embeddings=1024, dropout=0.0,
                                  pad_token_id=1, bos_token_id=2, eos_token_id=2)).eval()
    randomize(lm, 0.3)
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                                                          image_size=32, patch_size=8, projection_dim=16)).eval()
    randomize(clip, 0.2)
    args = {"opt_version": "opt", "visual_encoder": "clip", "n_visual_tokens": 2, "ret_emb_dim": 12, "gen_emb_dim": cross,
            "text_emb_layers": [-1], "text_fc_mode": "gill_mapper", "ret_text_fc_mode": "linear", "num_tokens": 8,
            "num_clip_tokens": 77, "share_ret_gen": True, "norm_image_embed": "none",
            "retrieval_token_idx": img_ids, "gen_token_idx": img_ids, "image_token": "<|image|>",
            "llm_embed_dim": 32, "clip_dim": 24, "mapper": {"dim": 16, "heads": 4, "layers": 2, "ffn": 32}}
    gill = GILLReference(args, lm, clip).eval()
    torch.manual_seed(22)
    for name in ["visual_embeddings", "visual_fc", "ret_text_hidden_fcs", "gen_text_hidden_fcs", "decision"]:
        randomize(getattr(gill, name), 0.3)
    with torch.no_grad():
        gill.input_embeddings.weight.copy_(torch.randn(8, 32) * 0.3)
    lm.save_pretrained(os.path.join(EXAMPLE, "opt"))
    for f in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(os.path.join(FIX, "opt", "tokenizer", f), os.path.join(EXAMPLE, "opt"))
    clip.save_pretrained(os.path.join(EXAMPLE, "clip"))
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(os.path.join(EXAMPLE, "clip"))
    save_file({k: v.contiguous() for k, v in gill.gill_state_dict().items()}, os.path.join(EXAMPLE, "gill.safetensors"))
    json.dump(args, open(os.path.join(EXAMPLE, "config.json"), "w"), indent=1)
    for f in os.listdir(os.path.join(EXAMPLE, "opt")):
        if f == "generation_config.json":
            os.remove(os.path.join(EXAMPLE, "opt", f))

    # Reference generation: BOS + caption, the forced [IMG] block, the mapper, then diffusers with prompt_embeds
    # only (the pipeline encodes "" for guidance, as GILL's call does), DDIM, 2 steps, seed 3.
    gill.install_img_rows()
    caption = "A red ball rolls to the right."
    ids = tok(caption)["input_ids"]
    pipe = StableDiffusionPipeline.from_pretrained(os.path.join(EXAMPLE, "sd"), torch_dtype=torch.float32, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    with torch.no_grad():
        embs = torch.cat([gill.embed_ids(ids), gill.embed_ids(img_ids)], 0)
        h = gill.heads(embs, len(ids))
        image = pipe(prompt_embeds=h["prompt_embeds"][None], num_inference_steps=2, guidance_scale=7.5,
                     generator=torch.Generator("cpu").manual_seed(3), output_type="np").images
    save_file({"prompt_embeds": h["prompt_embeds"].contiguous(), "decision": h["decision"].contiguous(),
               "image": torch.from_numpy(image).contiguous()}, os.path.join(ROOT, "generate.safetensors"))
    import diffusers
    json.dump({"caption": caption, "ids": ids, "scheduler": "ddim", "steps": 2, "guidance": 7.5, "seed": 3,
               "torch": torch.__version__, "transformers": transformers.__version__, "diffusers": diffusers.__version__},
              open(os.path.join(ROOT, "generate.json"), "w"))
    print("wrote", EXAMPLE, "image", tuple(image.shape))


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1:] == ["example"]:
        example()
    else:
        main()
        example()
