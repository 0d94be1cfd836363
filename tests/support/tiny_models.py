"""Tiny random llama-architecture GGUF models for fast tests.

Real models take gigabytes and seconds to load; these take ~0.5 MB and milliseconds, yet go
through the same llama.cpp loader, BPE tokenizer and chat-template paths. A "draft" is made by
adding noise to the main model's weights, so its greedy choices agree with the main model often
but not always, which exercises both the accept and the reject path of speculative decoding.

EOS is ``<|im_end|>`` (as in Qwen2.5 instruct); BOS/PAD is ``<|endoftext|>``. The output row of
``<|im_end|>`` is tied to the embedding of ``"."`` so the model tends to stop after a full stop.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import gguf
import gguf.quants
import numpy as np

N_LAYER, N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_CTX_TRAIN = 2, 64, 4, 2, 128, 512
HEAD_DIM = N_EMBD // N_HEAD
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
BOS_TEXT, EOS_TEXT = "<|endoftext|>", "<|im_end|>"
DEFAULT_N_VOCAB = {"bpe": 384, "other": 600}  # 216 apart: above llama.cpp's 128-token limit
OUT_SCALE = 4.0  # std of logits; tuned so top-1 probability is mostly 0.2-0.8, not flat/one-hot
RES_SCALE = 0.5  # strength of attention/FFN updates: enough for context to move the argmax
EOS_GAIN = 5.5  # <|im_end|> logit after ".", in logit std units (max of 384 normals ~ 3)
# One thread: for a model this small, thread sync dominates; on a busy 2-core box a 2-thread
# batch eval took ~450 ms instead of <1 ms.
LOAD_KWARGS: dict[str, Any] = {"n_ctx": 256, "n_threads": 1, "n_threads_batch": 1, "verbose": False}
FILE_TYPES = {  # general.file_type of a model whose matrices are all of one type
    "F32": gguf.LlamaFileType.ALL_F32,
    "F16": gguf.LlamaFileType.MOSTLY_F16,
    "BF16": gguf.LlamaFileType.MOSTLY_BF16,
    "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
    "Q4_1": gguf.LlamaFileType.MOSTLY_Q4_1,
    "Q5_0": gguf.LlamaFileType.MOSTLY_Q5_0,
    "Q5_1": gguf.LlamaFileType.MOSTLY_Q5_1,
}
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_CORPUS = """
def return import from class self print for while if else elif try except with as lambda
yield pass break continue None True False and or not in is list dict tuple set int str float
len range open read write append value index result items keys values string number count
the of and to a in that have it for not on with he as you do at this but his by from they we
say her she or an will my one all would there their what so up out if about who get which go me
when make can like time no just him know take people into year your good some could them see
other than then now look only come its over think also back after use two how our work first
well way even new want because any these give day most us hello world speculative decoding draft
model token accept reject verify sample greedy logits probability tokenizer template assistant
user system message content python function variable test file path number string error
"""  # words the BPE merges are learned from, so common words become few tokens


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (llama.cpp's BPE decoder inverts it)."""
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    extra = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(extra)}}


def _train_merges(words: list[str], budget: int) -> tuple[list[str], list[str]]:
    """Tiny deterministic BPE training, so merges are consistent and every result is a token."""
    b2u = _byte_to_unicode()
    counts = Counter("".join(b2u[b] for b in (" " + w).encode()) for w in words)
    seqs = {w: list(w) for w in counts}
    merges: list[str] = []
    new_tokens: list[str] = []
    seen: set[str] = set()
    while len(new_tokens) < budget:
        pairs: Counter[tuple[str, str]] = Counter()
        for w, c in counts.items():
            for pair in zip(seqs[w], seqs[w][1:], strict=False):
                pairs[pair] += c
        if not pairs:
            break
        a, b = max(sorted(pairs), key=pairs.__getitem__)  # sorted first: deterministic ties
        merges.append(f"{a} {b}")
        if a + b not in seen:
            seen.add(a + b)
            new_tokens.append(a + b)
        for w, s in seqs.items():
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges, new_tokens


def build_vocab(vocab: str, n_vocab: int) -> tuple[list[str], list[int], list[str]]:
    """Return (tokens, token types, merges) for a byte-level BPE vocabulary of exactly n_vocab.

    "bpe": bytes (by byte value), learned merges, then the special tokens.
    "other": special tokens first, bytes in GPT-2 order, merges from reversed words; so token
    texts differ at nearly every id and the size differs, for vocabulary-mismatch tests.
    """
    if vocab not in DEFAULT_N_VOCAB:
        raise ValueError(f"vocab must be one of {sorted(DEFAULT_N_VOCAB)}, got {vocab!r}")
    if n_vocab < 256 + len(SPECIALS) + 8:
        raise ValueError(f"n_vocab={n_vocab} too small for 256 byte tokens plus specials")
    b2u = _byte_to_unicode()
    budget = n_vocab - 256 - len(SPECIALS)
    normal, ctrl = int(gguf.TokenType.NORMAL), int(gguf.TokenType.CONTROL)
    unused = int(gguf.TokenType.UNUSED)
    if vocab == "bpe":
        merges, learned = _train_merges(_CORPUS.split(), budget)
        byte_tokens = [b2u[b] for b in range(256)]
    else:
        merges, learned = _train_merges([w[::-1] for w in _CORPUS.split()], budget)
        byte_tokens = list(b2u.values())
    pad = [f"<|reserved_{i}|>" for i in range(budget - len(learned))]  # only if corpus runs out
    body = byte_tokens + learned
    body_types = [normal] * len(body) + [unused] * len(pad)
    if vocab == "bpe":
        tokens = body + pad + list(SPECIALS)
        types = body_types + [ctrl] * len(SPECIALS)
    else:
        tokens = list(SPECIALS) + body + pad
        types = [ctrl] * len(SPECIALS) + body_types
    assert len(tokens) == n_vocab == len(set(tokens))
    return tokens, types, merges


def _base_weights(seed: int, tokens: list[str], arch: str = "llama") -> dict[str, np.ndarray]:
    """Random weights, in a fixed generation order so a seed always gives the same model;
    "qwen2" adds Q/K/V biases, drawn last so the weights stay those of "llama"."""
    rng = np.random.default_rng(seed)
    name = gguf.TENSOR_NAMES
    n_vocab, eos_id, dot_id = len(tokens), tokens.index(EOS_TEXT), tokens.index(".")

    def lin(n_out: int, n_in: int, scale: float = 1.0) -> np.ndarray:
        return rng.standard_normal((n_out, n_in)) * (scale / np.sqrt(n_in))

    embd = rng.standard_normal((n_vocab, N_EMBD))
    w = {name[gguf.MODEL_TENSOR.TOKEN_EMBD]: embd}
    for i in range(N_LAYER):
        t = {
            gguf.MODEL_TENSOR.ATTN_NORM: np.ones(N_EMBD),
            gguf.MODEL_TENSOR.ATTN_Q: lin(N_HEAD * HEAD_DIM, N_EMBD, 2.0),  # sharper attention
            gguf.MODEL_TENSOR.ATTN_K: lin(N_HEAD_KV * HEAD_DIM, N_EMBD, 2.0),
            gguf.MODEL_TENSOR.ATTN_V: lin(N_HEAD_KV * HEAD_DIM, N_EMBD),
            gguf.MODEL_TENSOR.ATTN_OUT: lin(N_EMBD, N_HEAD * HEAD_DIM, RES_SCALE),
            gguf.MODEL_TENSOR.FFN_NORM: np.ones(N_EMBD),
            gguf.MODEL_TENSOR.FFN_GATE: lin(N_FF, N_EMBD),
            gguf.MODEL_TENSOR.FFN_UP: lin(N_FF, N_EMBD),
            gguf.MODEL_TENSOR.FFN_DOWN: lin(N_EMBD, N_FF, RES_SCALE),
        }
        w.update({name[k].format(bid=i): v for k, v in t.items()})
    w[name[gguf.MODEL_TENSOR.OUTPUT_NORM]] = np.ones(N_EMBD)
    out = lin(n_vocab, N_EMBD, OUT_SCALE)
    # Zero rows get logit 0, far below the top: keeps output readable ASCII words, and keeps
    # control tokens other than EOS out of generations.
    b2u = _byte_to_unicode()
    silent = {b2u[b] for b in range(256) if not (32 <= b < 127 or b == 10)} | set(SPECIALS)
    out[[i for i, t in enumerate(tokens) if t in silent]] = 0.0
    # RMS-normed hidden state has norm sqrt(n_embd); after ".", it points roughly along embd[dot]
    out[eos_id] = embd[dot_id] / np.linalg.norm(embd[dot_id]) * OUT_SCALE * EOS_GAIN / N_EMBD**0.5
    w[name[gguf.MODEL_TENSOR.OUTPUT]] = out
    weights = {f"{k}.weight": v for k, v in w.items()}
    if arch == "qwen2":
        for i in range(N_LAYER):
            for kind, n_out in (("attn_q", N_HEAD), ("attn_k", N_HEAD_KV), ("attn_v", N_HEAD_KV)):
                weights[f"blk.{i}.{kind}.bias"] = 0.1 * rng.standard_normal(n_out * HEAD_DIM)
    return weights


def _rows_of(
    weights: dict[str, np.ndarray], tokens: list[str], vocab: str, seed: int, arch: str
) -> dict[str, np.ndarray]:
    """`weights` made those of `vocab`'s model where they can be: every layer, and the rows of
    the tokens both vocabularies have."""
    theirs = build_vocab(vocab, DEFAULT_N_VOCAB[vocab])[0]
    base = _base_weights(seed, theirs, arch)
    index = {text: i for i, text in enumerate(theirs)}
    mine = [i for i, text in enumerate(tokens) if text in index]
    rows = [index[tokens[i]] for i in mine]
    result = dict(base)
    for key in ("token_embd.weight", "output.weight"):
        result[key] = weights[key].copy()
        result[key][mine] = base[key][rows]
    return result


def write_tiny_gguf(
    path: str | Path,
    *,
    seed: int = 0,
    n_vocab: int | None = None,
    perturb: float = 0.0,
    base_seed: int | None = None,
    vocab: str = "bpe",
    arch: str = "llama",
    weight_type: str = "F32",
    chat_template: str | None = CHAT_TEMPLATE,
    rows_of: str | None = None,
) -> Path:
    """Write a tiny model (2 layers, n_embd 64, 4 heads, 2 KV heads) and return its path.

    ``arch`` is "llama" or "qwen2" (the same weights plus Q/K/V biases). ``weight_type`` is
    how its matrices are stored: "F32", or any type the gguf package quantizes to ("F16",
    "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"); norms and biases stay F32.

    With ``perturb > 0`` the weights are those of ``base_seed`` (default: ``seed``) plus Gaussian
    noise of std ``perturb * std(tensor)`` drawn from ``seed``: a draft that mostly agrees with
    the base model. ``n_vocab`` defaults to 384 for "bpe" and 600 for "other". Same arguments
    always give a byte-identical file. ``chat_template=None`` leaves the template out, as a
    base model's file does. ``rows_of`` names another vocabulary ("bpe") whose model (of
    the same seed) this one is, as far as their vocabularies agree: its layers, and the
    embedding and output rows of every token whose text is that vocabulary's too; so a draft
    of another vocabulary that mostly agrees with its main model.
    """
    path = Path(path)
    n_vocab = DEFAULT_N_VOCAB.get(vocab, 0) if n_vocab is None else n_vocab
    tokens, types, merges = build_vocab(vocab, n_vocab)
    bos_id, eos_id = tokens.index(BOS_TEXT), tokens.index(EOS_TEXT)
    weights = _base_weights(seed if base_seed is None else base_seed, tokens, arch)
    if rows_of is not None:
        weights = _rows_of(weights, tokens, rows_of, seed if base_seed is None else base_seed, arch)
    if perturb > 0:
        noise_rng = np.random.default_rng([seed, 0x5EED])  # differs from every base stream
        weights = {
            k: v + perturb * v.std() * noise_rng.standard_normal(v.shape) if v.std() > 0 else v
            for k, v in weights.items()
        }

    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"tiny-{vocab}-s{seed}" + (f"-p{perturb:g}-b{base_seed}" if perturb > 0 else ""))
    w.add_file_type(int(FILE_TYPES[weight_type]))
    w.add_vocab_size(n_vocab)
    w.add_context_length(N_CTX_TRAIN)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")  # a pre-tokenizer regex llama.cpp knows; digits split singly
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(bos_id)
    w.add_eos_token_id(eos_id)
    w.add_pad_token_id(bos_id)
    w.add_add_bos_token(False)
    if chat_template is not None:
        w.add_chat_template(chat_template)
    stored = gguf.GGMLQuantizationType[weight_type]
    for name, tensor in weights.items():
        values = np.ascontiguousarray(tensor, dtype=np.float32)
        if values.ndim == 2 and stored != gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, gguf.quants.quantize(values, stored), raw_dtype=stored)
        else:
            w.add_tensor(name, values)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def make_tiny_pair(
    folder: str | Path, perturb: float = 0.08, weight_type: str = "F32"
) -> tuple[Path, Path]:
    """Write (main, draft): the draft is the main model (seed 0) perturbed with noise (seed 1)."""
    folder = Path(folder)
    main = write_tiny_gguf(folder / "tiny-main.gguf", seed=0, weight_type=weight_type)
    draft = write_tiny_gguf(
        folder / "tiny-draft.gguf", seed=1, perturb=perturb, base_seed=0, weight_type=weight_type
    )
    return main, draft
