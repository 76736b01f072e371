#!/usr/bin/env python3
"""Fixtures that pin Storyloom's GILL loader and input layout to GILL's own code, run from a GILL
checkout (the reference source at the commit of the released weights; nothing is downloaded):

    .venv/bin/python Tools/make_gill_release_fixtures.py /work/shared/gill-release/reference

Writes Tests/ModelsTests/Fixtures/gill/release/:

  manifest.json   every tensor of the released pretrained_ckpt.pth.tar (name, shape, dtype): GILL's
                  models.GILL built from the released model_args.json on torch's meta device (the
                  facebook/opt-6.7b and openai/clip-vit-large-patch14 configs written out below, a
                  stand-in tokenizer of OPT's length 50265 + <|image|> + 8 [IMG]), cast to bf16 as
                  main.py does, wrapped in DataParallel (the `module.` of training), then main.py's
                  save filter and scripts/prune_model_ckpt.py run on the result.
  small/          a GILL folder with model_args.json only, written by that same path at small widths
                  (OPT 32 wide, CLIP 24 wide, GILLMapper 16 wide — layers.py's hard-coded 512 replaced
                  in a copy executed into gill.layers; layer counts and heads as GILL's):
                    pretrained_ckpt.pth.tar   bf16, `module.` prefixes put back, [IMG] rows cut to 8
                    decision_model.pth.tar    {'state_dict': Sequential(Dropout, Linear(32, 2))}
                    opt/   pytorch_model.bin in 2 shards + pytorch_model.bin.index.json, tokenizer
                    clip/  pytorch_model.bin (CLIPVisionModel, keys under vision_model.), preprocessor_config.json
  small_expected.safetensors / small_expected.json
                  GILL's models.load_gill on small/ (kept in float32: its .bfloat16() and .cuda() are
                  no-ops here), then generate_for_images_and_texts([image, text], num_words=2,
                  gen_scale_factor=1e5) as the eval scripts call it: the [IMG] block's hidden states
                  (captured where GILL feeds them to gen_text_hidden_fcs), the mapper output GILL
                  returns, and — as GILL's lines compute them, since that function asserts a 4096-wide
                  LLM for the decision — the retrieval embedding (before normalising) and decision.
  vist/p*.png, vist_pixels.safetensors   the VIST images, and the pixel values GILL's script gave them
  layout.json     one VIST story and one VisDial dialogue run through GILL's evals/generate_vist_images.py
                  and evals/generate_visdial_images.py (data files written to a temp dir, load_gill
                  replaced by a recorder), their prompt lists then through generate_for_images_and_texts
                  of the small model; the input embeddings read back as token ids, and -1-n for the
                  visual tokens of image n.
"""
import copy
import glob
import json
import os
import runpy
import shutil
import sys
import tempfile
import types
from collections import OrderedDict, namedtuple

import torch
import torch.nn as nn
import transformers
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, OPTConfig, OPTForCausalLM

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelsTests", "Fixtures")
OUT = os.path.join(FIX, "gill", "release")
SMALL_MAPPER_DIM = 16

# facebook/opt-6.7b's config.json and openai/clip-vit-large-patch14's vision_config (transformers' hub files).
OPT_67B = dict(vocab_size=50272, hidden_size=4096, word_embed_proj_dim=4096, num_hidden_layers=32, ffn_dim=16384,
               num_attention_heads=32, max_position_embeddings=2048, do_layer_norm_before=True, pad_token_id=1,
               bos_token_id=2, eos_token_id=2, dropout=0.1)
CLIP_L14 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=224,
                patch_size=14, projection_dim=768)


def import_gill(checkout):
    """GILL's gill package from `checkout`. torchvision, which gill/utils.py imports but nothing here uses, is
    stubbed for that import only (diffusers and transformers are imported first so they see it missing)."""
    from diffusers import StableDiffusionPipeline  # noqa: F401
    stubs = {}
    if "torchvision" not in sys.modules:
        tv = types.ModuleType("torchvision")
        tv.transforms = types.ModuleType("torchvision.transforms")
        tv.transforms.functional = types.ModuleType("torchvision.transforms.functional")
        stubs = {"torchvision": tv, "torchvision.transforms": tv.transforms, "torchvision.transforms.functional": tv.transforms.functional}
    sys.modules.update(stubs)
    sys.path.insert(0, checkout)
    try:
        from gill import layers, models, utils  # noqa: E402
    finally:
        for name in stubs:
            del sys.modules[name]
    # transformers 4.30's AutoFeatureExtractor gave CLIP folders a CLIPImageProcessor; 5.x no longer maps them.
    utils.AutoFeatureExtractor = CLIPImageProcessor
    return layers, models, utils


def set_mapper_width(layers, checkout, width):
    """Re-executes GILL's layers.py with its hard-coded GILLMapper width replaced."""
    path = os.path.join(checkout, "gill", "layers.py")
    src = open(path).read()
    assert "hidden_dim = 512" in src, "layers.py no longer hard-codes hidden_dim = 512"
    exec(compile(src.replace("hidden_dim = 512", "hidden_dim = %d" % width), path, "exec"), layers.__dict__)


class Patched:
    """Swaps attributes for the duration of a block."""
    def __init__(self, *triples):
        self.triples, self.saved = triples, []

    def __enter__(self):
        for obj, name, value in self.triples:
            self.saved.append((obj, name, getattr(obj, name)))
            setattr(obj, name, value)

    def __exit__(self, *exc):
        for obj, name, value in reversed(self.saved):
            setattr(obj, name, value)


def loader(cls, config):
    """Stands in for `cls` in gill.models: from_pretrained builds `config` instead of downloading."""
    return types.SimpleNamespace(from_pretrained=lambda *a, **k: cls(config))


class StandInTokenizer:
    """The two things GILLModel.__init__ reads of the tokenizer load_gill builds for OPT."""
    def __init__(self, base, num_tokens):
        self.cls_token_id = base                 # <|image|>, the first added token
        self.length = base + 1 + num_tokens

    def __len__(self):
        return self.length


def gill_training_state_dict(models, tokenizer, args):
    """main.py: models.GILL(tokenizer, args).bfloat16() inside DataParallel, then the save filter."""
    model = models.GILL(tokenizer, args).bfloat16()
    model = torch.nn.DataParallel(model)        # on a CPU-only host it only wraps: keys get `module.`
    stripped = {k: v for k, v in model.state_dict().items() if ('.lm' not in k and '.visual_model' not in k)}
    return OrderedDict(sorted(stripped.items()))


def prune(checkout, state_dict, args_dict, folder):
    """Writes ckpt_best.pth.tar as utils.save_checkpoint does and runs scripts/prune_model_ckpt.py on it."""
    os.makedirs(folder, exist_ok=True)
    json.dump(args_dict, open(os.path.join(folder, "model_args.json"), "w"), indent=4)
    torch.save({"epoch": 1, "state_dict": state_dict, "best_acc1": 0.0, "optimizer": {"state": {}, "param_groups": []},
                "scheduler": {"last_epoch": 1}}, os.path.join(folder, "ckpt_best.pth.tar"))
    argv = sys.argv
    sys.argv = ["prune_model_ckpt.py", folder]
    try:
        runpy.run_path(os.path.join(checkout, "scripts", "prune_model_ckpt.py"), run_name="__main__")
    finally:
        sys.argv = argv
    os.remove(os.path.join(folder, "ckpt_best.pth.tar"))
    return torch.load(os.path.join(folder, "pretrained_ckpt.pth.tar"))


def dtype_name(t):
    return {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}[t.dtype]


def manifest(checkout, layers, models):
    args_dict = json.load(open(os.path.join(checkout, "..", "model_args.json")))
    args = namedtuple("args", args_dict)(**args_dict)
    with torch.device("meta"), Patched((models, "OPTForCausalLM", loader(OPTForCausalLM, OPTConfig(**OPT_67B))),
                                       (models, "CLIPVisionModel", loader(CLIPVisionModel, CLIPVisionConfig(**CLIP_L14))),
                                       (models.utils, "get_feature_extractor_for_model", lambda *a, **k: None)):
        sd = gill_training_state_dict(models, StandInTokenizer(50265, args.num_tokens), args)
        # prune_model_ckpt.py on meta tensors (torch.save cannot write them): its two edits, by its own code lines.
        src = open(os.path.join(checkout, "scripts", "prune_model_ckpt.py")).read()
        assert "k.replace('module.', '')" in src and "[-model_args['num_tokens']:, :]" in src
        pruned = {k.replace("module.", ""): v for k, v in sd.items()}
        pruned["model.input_embeddings.weight"] = pruned["model.input_embeddings.weight"][-args.num_tokens:, :]
    tensors = [{"name": k, "shape": list(v.shape), "dtype": dtype_name(v)} for k, v in pruned.items()]
    return {"source": "GILL's models.GILL from model_args.json (meta device), main.py save filter, prune_model_ckpt.py",
            "root_keys": ["state_dict"], "tensors": tensors,
            "parameters": sum(int(torch.Size(t["shape"]).numel()) for t in tensors),
            "torch": torch.__version__, "transformers": transformers.__version__}


def local_opt(models, folder):
    """GILL builds its LLM and tokenizer only for names containing 'facebook/opt'; read them from folder/opt."""
    opt = os.path.join(folder, "opt")
    return Patched((models, "OPTForCausalLM", types.SimpleNamespace(from_pretrained=lambda *a, **k: OPTForCausalLM.from_pretrained(opt))),
                   (models, "AutoTokenizer", types.SimpleNamespace(
                       from_pretrained=lambda *a, **k: transformers.AutoTokenizer.from_pretrained(opt, use_fast=False))))


def tiny_tokenizer_folder(folder):
    for f in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]:
        shutil.copy(os.path.join(FIX, "opt", "tokenizer", f), folder)


def small_folder(checkout, layers, models, folder):
    """The small GILL folder: OPT/CLIP as torch pickles, GILL's parts through main.py's filter and the prune script."""
    set_mapper_width(layers, checkout, SMALL_MAPPER_DIM)
    torch.manual_seed(31)
    opt = OPTForCausalLM(OPTConfig(vocab_size=404, hidden_size=32, word_embed_proj_dim=32, num_hidden_layers=2, ffn_dim=64,
                                   num_attention_heads=4, max_position_embeddings=128, dropout=0.0, pad_token_id=1,
                                   bos_token_id=2, eos_token_id=2)).eval()
    with torch.no_grad():
        for p in opt.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    clip = CLIPVisionModel(CLIPVisionConfig(hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                                            image_size=32, patch_size=8)).eval()
    with torch.no_grad():
        for p in clip.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(os.path.join(folder, "opt"))
    os.makedirs(os.path.join(folder, "clip"))
    # Torch pickles as transformers wrote them before safetensors: OPT in 2 shards with an index, CLIP in one file.
    sd = {k: v.contiguous() for k, v in opt.state_dict().items() if k != "lm_head.weight"}
    names = sorted(sd)
    shards = {"pytorch_model-00001-of-00002.bin": names[:len(names) // 2], "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
    for shard, keys in shards.items():
        torch.save(OrderedDict((k, sd[k]) for k in keys), os.path.join(folder, "opt", shard))
    json.dump({"metadata": {"total_size": sum(v.numel() * 4 for v in sd.values())},
               "weight_map": {k: s for s, keys in shards.items() for k in keys}},
              open(os.path.join(folder, "opt", "pytorch_model.bin.index.json"), "w"), indent=1)
    opt.config.to_json_file(os.path.join(folder, "opt", "config.json"))
    tiny_tokenizer_folder(os.path.join(folder, "opt"))
    # Keys as transformers 4.30 (GILL's pin) saved a CLIPVisionModel: under vision_model. (5.x saves them bare).
    clip_sd = {k if k.startswith("vision_model.") else "vision_model." + k: v.contiguous() for k, v in clip.state_dict().items()}
    torch.save(OrderedDict(clip_sd), os.path.join(folder, "clip", "pytorch_model.bin"))
    clip.config.to_json_file(os.path.join(folder, "clip", "config.json"))
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(os.path.join(folder, "clip"))

    # GILL's parts: the tokenizer as load_gill builds it, models.GILL at these widths, main.py's filter, the prune script.
    released = json.load(open(os.path.join(checkout, "..", "model_args.json")))
    tok = transformers.AutoTokenizer.from_pretrained(os.path.join(folder, "opt"), use_fast=False)
    tok.add_special_tokens({"cls_token": "<|image|>"})
    img = []
    for i in range(released["num_tokens"]):
        tok.add_tokens("[IMG%d]" % i)
        img.append(tok("[IMG%d]" % i, add_special_tokens=False).input_ids[0])
    args_dict = dict(released, opt_version="facebook/opt (opt/)", visual_encoder="clip", retrieval_token_idx=img, gen_token_idx=img)
    cwd = os.getcwd()
    os.chdir(folder)   # visual_encoder names the clip/ folder relative to it
    try:
        torch.manual_seed(32)
        with local_opt(models, folder):
            state = gill_training_state_dict(models, tok, namedtuple("args", args_dict)(**args_dict))
    finally:
        os.chdir(cwd)
    # The trained parts at a spread that makes the outputs informative (torch's inits leave [IMG] rows tiny).
    torch.manual_seed(33)
    with torch.no_grad():
        for k, v in state.items():
            if v.is_floating_point() and k != "module.model.logit_scale":
                v.copy_((torch.randn(v.shape) * 0.3).to(v.dtype))
    with tempfile.TemporaryDirectory() as tmp:
        pruned = prune(checkout, state, args_dict, tmp)
    assert set(pruned) == {"state_dict"}, pruned.keys()
    # Back with the DataParallel prefix: load_gill strips `module.` itself, so Storyloom must too.
    torch.save({"state_dict": OrderedDict(("module." + k, v) for k, v in pruned["state_dict"].items())},
               os.path.join(folder, "pretrained_ckpt.pth.tar"))
    json.dump(args_dict, open(os.path.join(folder, "model_args.json"), "w"), indent=4)
    torch.manual_seed(34)
    decision = nn.Sequential(nn.Dropout(0.5), nn.Linear(32, 2))
    with torch.no_grad():
        decision[1].weight.mul_(8)
    torch.save({"state_dict": decision.state_dict()}, os.path.join(folder, "decision_model.pth.tar"))
    return args_dict


def load_small(models, folder):
    """models.load_gill on the small folder, float32 on the CPU, no SD, then its decision head."""
    sd_stub = types.SimpleNamespace(from_pretrained=lambda *a, **k: types.SimpleNamespace(to=lambda *a, **k: None))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with local_opt(models, folder), Patched((models, "StableDiffusionPipeline", sd_stub),
                                                (nn.Module, "cuda", lambda self, *a, **k: self),
                                                (nn.Module, "bfloat16", lambda self: self)):
            model = models.load_gill(folder, load_ret_embs=False, decision_model_fn=None)
    finally:
        os.chdir(cwd)
    # GILL.__init__ hard-codes Linear(4096, 2); the same Sequential at this width, loaded as GILL loads it.
    model.decision_model = nn.Sequential(nn.Dropout(0.5), nn.Linear(32, 2))
    model.decision_model.load_state_dict(torch.load(os.path.join(folder, "decision_model.pth.tar"))["state_dict"], strict=True)
    model.decision_model.eval()
    model.load_sd = False   # load_gill hard-codes SD; without it GILL returns the prompt embeddings SD would get
    return model.eval()


def run_prompt(model, prompt):
    """generate_for_images_and_texts as the eval scripts call it; returns GILL's outputs and what it fed the LLM."""
    seen = {}
    inner_generate = model.model.generate
    mapper = model.model.gen_text_hidden_fcs[0]
    mapper_forward = mapper.forward

    def generate(embeddings, *a, **k):
        seen["input_embs"] = embeddings.clone()
        return inner_generate(embeddings, *a, **k)

    def forward(x, input_embs):
        seen["raw_emb"], seen["gen_prefix_embs"] = x.clone(), input_embs.clone()
        return mapper_forward(x, input_embs)

    with Patched((model.model, "generate", generate), (mapper, "forward", forward)), torch.no_grad():
        outputs = model.generate_for_images_and_texts(prompt, num_words=2, gen_scale_factor=1e5)
    return outputs, seen


def read_back(model, embs, images):
    """Input embeddings → token ids (rows of the embedding table), -1-n for image n's visual tokens."""
    table = model.model.input_embeddings.weight
    visual = [model.model.get_visual_embs(p[None], mode="captioning")[0] for p in images]
    out, i = [], 0
    while i < embs.shape[0]:
        for n, v in enumerate(visual):
            if i + v.shape[0] <= embs.shape[0] and torch.equal(embs[i:i + v.shape[0]], v):
                out += [-1 - n] * v.shape[0]
                i += v.shape[0]
                break
        else:
            hits = (table == embs[i]).all(-1).nonzero().flatten().tolist()
            assert len(hits) == 1, (i, hits)
            out.append(hits[0])
            i += 1
    return out


class Recorder:
    """What the eval scripts get from load_gill: records each prompt list they pass."""
    def __init__(self):
        self.prompts = []

    def generate_for_images_and_texts(self, prompts, **kwargs):
        self.prompts.append((prompts, kwargs))
        fake = types.SimpleNamespace(save=lambda f: None)
        return ["", {"gen": [(fake, 0)]}]


def run_eval_script(checkout, models, script, setup):
    """Runs one of GILL's eval scripts in a temp dir holding its data files, with load_gill recording."""
    recorder = Recorder()
    real_generator = torch.Generator
    with tempfile.TemporaryDirectory() as tmp:
        setup(tmp)
        cwd, argv = os.getcwd(), sys.argv
        os.chdir(tmp)
        sys.argv = [script, os.path.join(tmp, "out")]
        try:
            with Patched((models, "load_gill", lambda *a, **k: recorder),
                         (torch, "Generator", lambda device=None: real_generator())):
                runpy.run_path(os.path.join(checkout, "evals", script), run_name="__main__")
        finally:
            os.chdir(cwd)
            sys.argv = argv
    assert len(recorder.prompts) == 1, len(recorder.prompts)
    return recorder.prompts[0]


VIST_CAPTIONS = ["A red ball is on the beach.", "It rolls to the right.", "The sun is low.",
                 "The ball stops by a box.", "Now it is night."]
VISDIAL = [("is the ball red", "yes it is"), ("where is it", "on the left"), ("is it night", "no, the sun is up")]


def layout(checkout, models, model):
    def vist_setup(tmp):
        os.makedirs(os.path.join(tmp, "sis", "val_images"))
        story = []
        os.makedirs(os.path.join(OUT, "vist"), exist_ok=True)
        for i, c in enumerate(VIST_CAPTIONS):
            w, h = 40 + 8 * i, 30 + 4 * i   # not square: the script squashes them to 224x224
            g = torch.Generator().manual_seed(40 + i)
            pixels = (torch.rand(h, w, 3, generator=g) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels, "RGB").save(os.path.join(tmp, "sis", "val_images", "p%d.png" % i))
            shutil.copy(os.path.join(tmp, "sis", "val_images", "p%d.png" % i), os.path.join(OUT, "vist", "p%d.png" % i))
            story.append({"image_id": "p%d" % i, "caption": c})
        json.dump({"annotations": {"s0": story}}, open(os.path.join(tmp, "sis", "val_formatted.json"), "w"))

    def visdial_setup(tmp):
        d = os.path.join(tmp, "VisualDialog")
        os.makedirs(d)
        data = {"data": {"questions": [q for q, _ in VISDIAL], "answers": [a for _, a in VISDIAL],
                         "dialogs": [{"image_id": 7, "caption": "a red ball on a beach",
                                      "dialog": [{"question": i, "answer": i} for i in range(len(VISDIAL))]}]}}
        json.dump(data, open(os.path.join(d, "visdial_1.0_val.json"), "w"))
        json.dump([{"image_id": 7}], open(os.path.join(d, "visdial_1.0_val_dense_annotations.json"), "w"))

    out = {}
    for name, script, setup in [("vist", "generate_vist_images.py", vist_setup),
                                ("visdial", "generate_visdial_images.py", visdial_setup)]:
        prompts, kwargs = run_eval_script(checkout, models, script, setup)
        images = [models.utils.get_pixel_values_for_model(model.model.feature_extractor, p)
                  for p in prompts if isinstance(p, Image.Image)]
        _, seen = run_prompt(model, prompts)
        if images:
            save_file({"pixel_values": torch.stack(images).float().contiguous()}, os.path.join(OUT, name + "_pixels.safetensors"))
        out[name] = {"pieces": [p if isinstance(p, str) else {"image": list(p.size)} for p in prompts],
                     "call": {k: v for k, v in kwargs.items() if k != "generator"},
                     "sequence": read_back(model, seen["input_embs"][0], images)}
    out["vist"]["captions"] = VIST_CAPTIONS
    out["visdial"]["rounds"] = [list(r) for r in VISDIAL]
    return out


def main():
    torch.set_num_threads(1)
    # GILL pins transformers 4.30, whose resize_token_embeddings initialised new rows plainly; the
    # mean/covariance init of later versions also cannot run on meta tensors.
    resize = transformers.PreTrainedModel.resize_token_embeddings
    transformers.PreTrainedModel.resize_token_embeddings = lambda self, n=None, *a, **k: resize(self, n, mean_resizing=False)
    checkout = os.path.abspath(sys.argv[1])
    layers, models, utils = import_gill(checkout)
    os.makedirs(OUT, exist_ok=True)
    json.dump(manifest(checkout, layers, models), open(os.path.join(OUT, "manifest.json"), "w"), indent=1)
    print("manifest written")

    folder = os.path.join(OUT, "small")
    small_folder(checkout, layers, models, folder)
    model = load_small(models, folder)
    image = Image.open(os.path.join(FIX, "clip", "images", "gradient_40x30.png")).convert("RGB")
    text = "A red ball rolls to the right."
    outputs, seen = run_prompt(model, [image, text])
    with torch.no_grad():
        raw = seen["raw_emb"]                                               # (1, 8, 32): the [IMG] hidden states
        ret = model.model.ret_text_hidden_fcs[0](raw, None)[:, 0, :]        # GILL's retrieval embedding, before its norm
        decision = model.decision_model(raw[:, 0, :]).softmax(dim=-1)       # GILL's decision probabilities
    prompt_embeds = outputs[1]["gen"][0]                                    # (1, 77, 768), what SD would get
    pixels = utils.get_pixel_values_for_model(model.model.feature_extractor, image)
    save_file({"ret_embedding": ret[0].float().contiguous(), "prompt_embeds": prompt_embeds[0].float().contiguous(),
               "decision": decision[0].float().contiguous(), "img_hidden": raw[0].float().contiguous(),
               "input_embs": seen["input_embs"][0].float().contiguous(), "pixel_values": pixels.float().contiguous()},
              os.path.join(OUT, "small_expected.safetensors"))
    meta = {"prompt": ["image: Fixtures/clip/images/gradient_40x30.png", text],
            "sequence": read_back(model, seen["input_embs"][0], [pixels]),
            "decision_classes": [model.idx2dec[i] for i in range(2)],
            "generated": outputs[0], "torch": torch.__version__, "transformers": transformers.__version__}
    json.dump(meta, open(os.path.join(OUT, "small_expected.json"), "w"), indent=1)
    print("small written; sequence", meta["sequence"])

    json.dump(layout(checkout, models, model), open(os.path.join(OUT, "layout.json"), "w"), indent=1)
    print("layout written")


if __name__ == "__main__":
    main()
