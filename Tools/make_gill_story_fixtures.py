#!/usr/bin/env python3
"""Fixtures for `gill-story`: GILL's own `GILL.generate_for_images_and_texts` (interleaved text and image
output) run on the small release-format GILL folder that Tools/make_gill_release_fixtures.py wrote, from a
GILL checkout (nothing is downloaded):

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python Tools/make_gill_story_fixtures.py /work/shared/gill-release/reference

Writes Tests/ModelsTests/Fixtures/gill/release/story.json (+ story_pool.safetensors): a context of two captions
and two VIST fixture images (each caption then its image, squashed to 224x224 as GILL's VIST script does), a
retrieval pool of 6 random vectors (stand-ins for `get_visual_embs(image, mode='retrieval')` of 6 images, set up
as load_gill sets `emb_matrix`: normalised, times exp(logit_scale)), and per case (GILL's controls:
ret_scale_factor, gen_scale_factor, min_word_tokens, max_num_rets, num_words; greedy) what GILL produced:
every generated id (captured from GILLModel.generate, before GILL's newline cut), and GILL's return list — text
pieces, and per [IMG] block the retrieved pool rows with their scores, the decision with its probabilities and
the first 8 values of the prompt embeddings it would give Stable Diffusion (load_sd is off).

Two edits to GILL's function, both because the model is small: its `assert decision_emb.shape[1] == 4096` is
relaxed to this LLM's width (as make_gill_release_fixtures.py computes the decision for the same reason), and
`utils.get_image_from_url` returns a stand-in image for a pool row's name instead of fetching a URL.
"""
import inspect
import json
import os
import sys
import textwrap

import torch
import transformers
from PIL import Image
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_gill_release_fixtures as rel  # noqa: E402

CAPTIONS = ["A red ball is on the beach.", "It rolls to the right."]
CASES = [
    # name, kwargs of generate_for_images_and_texts. On this model greedy decoding repeats one token whose logit
    # is 3.0-7.1 times |logit of [IMG0]| (negative): the scale factors are picked around those ratios.
    ("defaults", dict(num_words=12)),
    ("ret_scale", dict(num_words=12, ret_scale_factor=3.2)),
    ("ret_and_gen_scale", dict(num_words=12, ret_scale_factor=1.8, gen_scale_factor=1.8)),
    ("gen_scale", dict(num_words=6, gen_scale_factor=1e5)),
    ("min_words", dict(num_words=8, gen_scale_factor=1e5, min_word_tokens=4)),
    ("two_images", dict(num_words=12, ret_scale_factor=3.5, max_num_rets=2)),
    ("three_rets", dict(num_words=4, gen_scale_factor=1e5, max_num_rets=3)),
]


def patch_function(models, width):
    """GILL.generate_for_images_and_texts from its source, with the 4096-wide decision assert at `width`."""
    src = textwrap.dedent(inspect.getsource(models.GILL.generate_for_images_and_texts))
    line = "assert decision_emb.shape[1] == 4096, decision_emb.shape"
    assert line in src, "generate_for_images_and_texts no longer asserts a 4096-wide decision input"
    src = src.replace(line, "assert decision_emb.shape[1] == %d, decision_emb.shape" % width)
    namespace = dict(models.__dict__)
    exec(compile(src, inspect.getsourcefile(models.GILL), "exec"), namespace)
    models.GILL.generate_for_images_and_texts = namespace["generate_for_images_and_texts"]


def main():
    torch.set_num_threads(1)
    # As make_gill_release_fixtures.py: transformers 4.30's plain init of the added token rows.
    resize = transformers.PreTrainedModel.resize_token_embeddings
    transformers.PreTrainedModel.resize_token_embeddings = lambda self, n=None, *a, **k: resize(self, n, mean_resizing=False)
    checkout = os.path.abspath(sys.argv[1])
    layers, models, utils = rel.import_gill(checkout)
    rel.set_mapper_width(layers, checkout, rel.SMALL_MAPPER_DIM)
    folder = os.path.join(rel.OUT, "small")
    model = rel.load_small(models, folder)
    width = model.model.input_embeddings.weight.shape[1]
    patch_function(models, width)
    def stand_in(name):
        img = Image.new("RGB", (8, 8))
        img.info["name"] = name
        return img
    models.utils.get_image_from_url = stand_in

    # The pool: rows named p0…p5, as load_gill builds emb_matrix from the saved retrieval embeddings.
    g = torch.Generator().manual_seed(51)
    pool = torch.randn(6, model.model.args.ret_emb_dim, generator=g)
    names = ["p%d" % i for i in range(pool.shape[0])]
    with torch.no_grad():
        scale = model.model.logit_scale.exp()
        model.emb_matrix = scale * (pool / pool.norm(dim=1, keepdim=True))
        model.path_array = names
    save_file({"pool": pool.contiguous()}, os.path.join(rel.OUT, "story_pool.safetensors"))

    prompt = []
    for i, c in enumerate(CAPTIONS):
        prompt.append(c)
        prompt.append(Image.open(os.path.join(rel.OUT, "vist", "p%d.png" % i)).convert("RGB").resize((224, 224)))

    captured = {}
    inner = model.model.generate

    def generate(embeddings, *a, **k):
        out = inner(embeddings, *a, **k)
        captured["ids"] = out[0][0].tolist()
        return out

    model.model.generate = generate
    cases = []
    for name, kwargs in CASES:
        with torch.no_grad():
            outputs = model.generate_for_images_and_texts(prompt, **kwargs)
        pieces = []
        for o in outputs:
            if isinstance(o, str):
                pieces.append({"text": o})
            else:
                gen = o["gen"][0]          # the prompt embeddings SD would get (load_sd is off)
                decision = o["decision"]
                pieces.append({"retrieved": [{"id": r[0].info["name"], "score": r[2]} for r in o["ret"]],
                               "decision": decision[0], "probabilities": decision[1],
                               "prompt_embeds_head": gen[0, 0, :8].tolist()})
        cases.append({"name": name, "call": kwargs, "ids": captured["ids"], "pieces": pieces})
        print(name, captured["ids"], [p.get("text", p.get("decision")) for p in pieces])

    model.model.generate = inner
    tok = model.model.tokenizer
    meta = {"captions": CAPTIONS, "images": ["vist/p0.png", "vist/p1.png"], "pool_names": names,
            "img_ids": model.model.retrieval_token_idx, "newline_id": tok("\n", add_special_tokens=False).input_ids[0],
            "logit_scale": float(model.model.logit_scale.detach()), "cases": cases,
            "torch": torch.__version__, "transformers": transformers.__version__}
    json.dump(meta, open(os.path.join(rel.OUT, "story.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
