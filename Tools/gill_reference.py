#!/usr/bin/env python3
"""A PyTorch reference of GILL's modules, written from the paper (Koh, Fried, Salakhutdinov 2023)
and /work/shared/DESIGN.md — not copied from GILL's code. Storyloom's Swift GILL is tested
against it (Tools/make_gill_fixtures.py writes the fixtures).

Parts, with the names their weights carry in a Storyloom GILL folder (`gill.safetensors`; the
same names GILL's released `pretrained_ckpt.pth.tar` uses after stripping `model.`):

  visual_embeddings  Linear(clip_dim, emb_dim * n_visual_tokens): CLIP pooler -> k visual tokens
  visual_fc          Linear(clip_dim, ret_emb_dim): CLIP pooler -> image retrieval embedding
  logit_scale        scalar; retrieval scores are cos(text, image) * exp(logit_scale)
  input_embeddings.weight   [num_tokens, emb_dim]: the learned rows of [IMG0]..[IMG7]
  ret_text_hidden_fcs.0.model   Linear(emb_dim, ret_emb_dim) on the [IMG0] last hidden state
  gen_text_hidden_fcs.0         GILLMapper: (hidden + input embedding of the [IMG] tokens) -> fc
                                -> nn.Transformer(norm_first, batch_first, relu, no dropout) with
                                num_clip_tokens learned queries -> model: Linear(mapper_dim, gen_emb_dim)
  decision.1         Linear(emb_dim, 2) on the [IMG0] hidden state (index 1 after GILL's Dropout);
                     class 0 = generate, 1 = retrieve (GILL's idx2dec); a folder whose head
                     was trained the other way round says so with "decision_classes": ["ret", "gen"]
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class GILLMapper(nn.Module):
    def __init__(self, in_dim, out_dim, num_queries, dim=512, heads=4, layers=4, ffn=2048):
        super().__init__()
        self.fc = nn.Linear(in_dim, dim)
        self.tfm = nn.Transformer(d_model=dim, nhead=heads, num_encoder_layers=layers, num_decoder_layers=layers,
                                  dim_feedforward=ffn, dropout=0.0, activation="relu", batch_first=True, norm_first=True)
        self.model = nn.Linear(dim, out_dim)
        self.query_embs = nn.Parameter(torch.randn(1, num_queries, dim))

    def forward(self, hidden, input_embs):
        x = self.fc(hidden + input_embs)
        x = self.tfm(x, self.query_embs.repeat(x.shape[0], 1, 1))
        return self.model(x)


class RetrievalHead(nn.Module):
    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.model = nn.Linear(in_dim, out_dim)

    def forward(self, x):
        return self.model(x)


class GILLReference(nn.Module):
    def __init__(self, args, lm, clip):
        super().__init__()
        self.args, self.lm, self.clip = args, lm, clip
        emb, cdim, k = args["llm_embed_dim"], args["clip_dim"], args["n_visual_tokens"]
        self.visual_embeddings = nn.Linear(cdim, emb * k)
        self.visual_fc = nn.Linear(cdim, args["ret_emb_dim"])
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))
        self.input_embeddings = nn.Embedding(args["num_tokens"], emb)
        self.ret_text_hidden_fcs = nn.ModuleList([RetrievalHead(emb, args["ret_emb_dim"])])
        m = args["mapper"]
        self.gen_text_hidden_fcs = nn.ModuleList([GILLMapper(emb, args["gen_emb_dim"], args["num_clip_tokens"],
                                                             m["dim"], m["heads"], m["layers"], m["ffn"])])
        self.decision = nn.Sequential(nn.Dropout(0.0), nn.Linear(emb, 2))

    def gill_state_dict(self):
        return {k: v for k, v in self.state_dict().items() if not k.startswith(("lm.", "clip."))}

    def install_img_rows(self):
        """Writes the learned [IMG] rows into the LM's (tied) token embeddings, as GILL's resize + train does."""
        with torch.no_grad():
            w = self.lm.get_input_embeddings().weight
            w[self.args["gen_token_idx"]] = self.input_embeddings.weight

    def pooler(self, pixel_values):
        # pooler_output of the vision tower (a WithProjection wrapper keeps it in .vision_model)
        tower = getattr(self.clip, "vision_model", self.clip)
        return tower(pixel_values=pixel_values).pooler_output

    def visual_prefix(self, pixel_values):
        pooled = self.pooler(pixel_values)
        return self.visual_embeddings(pooled).reshape(pooled.shape[0], self.args["n_visual_tokens"], -1)

    def image_retrieval_embedding(self, pixel_values):
        return self.visual_fc(self.pooler(pixel_values))

    def embed_ids(self, ids):
        return self.lm.get_input_embeddings()(torch.tensor(ids))

    def interleaved(self, segments):
        """segments: list of ('ids', [int]) or ('image', pixel_values [1,3,S,S]) -> [T, emb]."""
        parts = []
        for kind, value in segments:
            parts.append(self.embed_ids(value) if kind == "ids" else self.visual_prefix(value)[0])
        return torch.cat(parts, 0)

    def run(self, embs):
        out = self.lm(inputs_embeds=embs[None], output_hidden_states=True)
        return out.logits[0], out.hidden_states[-1][0]

    def heads(self, embs, img_start):
        """Outputs of the [IMG] block that starts at position img_start of embs."""
        _, hidden = self.run(embs)
        n = self.args["num_tokens"]
        h = hidden[img_start:img_start + n]
        img0 = h[0]
        ret = self.ret_text_hidden_fcs[0](img0)
        prompt = self.gen_text_hidden_fcs[0](h[None], embs[img_start:img_start + n][None])[0]
        decision = F.softmax(self.decision(img0), -1)
        return {"ret_embedding": ret, "prompt_embeds": prompt, "decision": decision}

    def scores(self, text_ret, image_ret):
        t = F.normalize(text_ret, dim=-1)
        i = F.normalize(image_ret, dim=-1)
        return (i @ t) * self.logit_scale.exp()

    def generate_greedy(self, embs, steps):
        """GILL's decode rule: [IMG1..] banned; once [IMG0] is produced the others are appended."""
        ids = self.args["gen_token_idx"]
        out = []
        for _ in range(steps):
            logits, _ = self.run(embs)
            last = logits[-1].clone()
            last[ids[1:]] = -float("inf")
            tok = int(torch.argmax(last))
            new = ids if tok == ids[0] else [tok]
            out += new
            embs = torch.cat([embs, self.embed_ids(new)], 0)
        return out
