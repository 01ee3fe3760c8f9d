#!/usr/bin/env python3
"""Produce (or re-check) the reference golden files of the end-to-end tests.

Runs in the reference virtual environment (scripts/reference/setup_reference_env.sh: torch,
transformers, safetensors, sentencepiece), never in CI:

    ~/.venvs/eurollm-ref/bin/python tests/data/make_goldens.py --stories /work/shared/models/stories260K
    ~/.venvs/eurollm-ref/bin/python tests/data/make_goldens.py --stories ... --check

It writes tests/data/golden/ (or --out DIR):

  <tiny model>.json        for every model of make_tiny_models.py: the sha256 of each generated
                           file, a fixed list of token ids, and the float32 logits of every position
                           computed by transformers (eager attention, float32, from the stored
                           F32/F16/BF16 values), plus a "sensitivity" table: how far the logits move
                           when one switch of the model is turned off (evidence that a comparison
                           catches an engine that ignores that switch).
  stories260K_greedy.json  200 greedy tokens from BOS alone (argmax loop that ignores EOS).
  stories260K_logits.json  logits of every position of a short tokenized prompt.
  stories260K_tokenize.json  SentencePiece ids (with BOS) and decoded text of a dozen strings.

--check regenerates everything in memory and compares with the files on disk; it exits non-zero
on any mismatch (file hashes, tokens, ids exactly; logits within 1e-5 relative per row, to allow
for a different BLAS or CPU).

Tokenizer reference, and what transformers does with `legacy`: see TOKENIZER_NOTE below.
"""

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_tiny_models  # noqa: E402  (same directory)

import torch  # noqa: E402
import transformers  # noqa: E402
import sentencepiece as spm  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

# The token ids fed to every tiny model: 20 positions (longer than every sliding window of the
# tiny Mistral models), starting with BOS, with repeats, all below the smallest vocabulary (256).
TINY_TOKENS = [1, 17, 200, 45, 99, 3, 150, 77, 77, 230, 12, 64, 128, 5, 250, 31, 90, 180, 17, 42]

STORIES_PROMPT = "Once upon a time, there was a little girl"
STORIES_GREEDY_STEPS = 200

TOKENIZE_STRINGS = [
    "Once upon a time, there was a little girl named Lily.",
    "Hello world",
    "",
    " leading space",
    "multiple   spaces  between    words",
    "tab\tseparated\tvalues",
    "line one\nline two\n\nline four\n",
    "Grüße aus München, schöne Straße!",
    "Ça va ? Où est l'été, garçon ?",
    "Zażółć gęślą jaźń",
    "Здравейте, как сте? Благодаря!",
    "emoji 😀🚀 and ❤️ done",
    "  two leading spaces and a trailing one ",
]

TOKENIZER_NOTE = (
    "ids = [bos] + SentencePiece(tokenizer.model).encode(text) and text = SentencePiece decode: this "
    "is what the Hugging Face slow LlamaTokenizer (sentencepiece, legacy=True, as this model's "
    "tokenizer_config.json says) returns for text without special-token strings. transformers >= 5 "
    "no longer has that slow class: LlamaTokenizer is the `tokenizers` backend converted from "
    "tokenizer.model, with a Metaspace pre-tokenizer whose prepend_scheme is 'always' for legacy=True "
    "and 'first' for legacy=False. Both schemes skip the dummy-prefix '\u2581' when the text already "
    "starts with a space, so for text with leading whitespace the transformers 5 ids lose one "
    "'\u2581' compared with SentencePiece (and its decode drops that space). hf_ids records what the "
    "installed transformers returns; hf_agrees says whether it equals ids. transformers 5's "
    "SentencePieceBackend (legacy=True) gives the SentencePiece ids without BOS "
    "(hf_sentencepiece_backend_agrees)."
)

TINY_NOTE = (
    "logits[i] are the float32 logits after token i of `tokens`, from transformers "
    "AutoModelForCausalLM (attn_implementation='eager', dtype=float32) on the weights exactly as "
    "stored (F16/BF16 values widened to float32). Mistral sliding window: query i attends keys j "
    "with i - sliding_window < j <= i (transformers' sliding_window_overlay). sensitivity: "
    "max over positions of max|logits_variant - logits| / max|logits| when the named switch is "
    "removed from the reference."
)


def versions():
    return {"transformers": transformers.__version__, "torch": torch.__version__,
            "sentencepiece": spm.__version__, "python": platform.python_version()}


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fmt_rows(rows):
    return "[\n" + ",\n".join("    [" + ",".join("%.8e" % v for v in row) + "]" for row in rows) + "\n  ]"


def write_golden(path, obj, big_key=None):
    """JSON with one logits row a line, floats as %.8e."""
    parts = []
    for k, v in obj.items():
        if k == big_key:
            parts.append("  %s: %s" % (json.dumps(k), fmt_rows(v)))
        else:
            parts.append("  %s: %s" % (json.dumps(k), json.dumps(v, ensure_ascii=False)))
    text = "{\n" + ",\n".join(parts) + "\n}\n"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return len(text.encode("utf-8"))


# ------------------------------------------------------------------------------------------------
# Tiny models
# ------------------------------------------------------------------------------------------------


def load_reference(model_dir, config=None):
    kwargs = {"dtype": torch.float32, "attn_implementation": "eager", "output_loading_info": True}
    if config is not None:
        kwargs["config"] = config
    model, info = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys",
                                                        "mismatched_keys", "error_msgs")}
    if bad:
        raise RuntimeError("%s: transformers did not load the checkpoint cleanly: %s" % (model_dir, bad))
    model.eval()
    return model


def check_weights_exact(model, model_dir, tied):
    """The reference must run on exactly the stored values (widened to float32)."""
    stored = {}
    for fname in os.listdir(model_dir):
        if fname.endswith(".safetensors"):
            stored.update(load_file(os.path.join(model_dir, fname)))
    sd = model.state_dict()
    for name, t in stored.items():
        if not torch.equal(sd[name], t.to(torch.float32)):
            raise RuntimeError("%s: %s differs from the stored tensor" % (model_dir, name))
    extra = set(sd) - set(stored)
    if tied:
        if extra != {"lm_head.weight"} or not torch.equal(sd["lm_head.weight"], sd["model.embed_tokens.weight"]):
            raise RuntimeError("%s: tied head not tied (extra %s)" % (model_dir, sorted(extra)))
    elif extra:
        raise RuntimeError("%s: parameters not in the checkpoint: %s" % (model_dir, sorted(extra)))


@torch.no_grad()
def forward_logits(model, tokens):
    ids = torch.tensor([tokens], dtype=torch.long)
    return model(input_ids=ids, use_cache=False).logits[0].to(torch.float32)


def rel_row_error(a, b):
    """max over rows of max|a-b| / max|b|."""
    worst = 0.0
    for ra, rb in zip(a, b):
        ra = torch.as_tensor(ra, dtype=torch.float64)
        rb = torch.as_tensor(rb, dtype=torch.float64)
        denom = rb.abs().max().item()
        worst = max(worst, (ra - rb).abs().max().item() / (denom if denom > 0 else 1.0))
    return worst


def variants(spec):
    """(description, config mutator, state-dict mutator) for the switches of one model."""
    cfg = spec["config"]
    out = []
    theta = cfg.get("rope_theta", 10000.0)

    def set_rope(params):
        def f(c):
            c.rope_parameters = dict(params)
        return f

    if cfg.get("rope_scaling"):
        out.append(("rope_scaling removed", set_rope({"rope_type": "default", "rope_theta": theta}), None))
    if theta != 10000.0:
        p = {"rope_type": "default", "rope_theta": 10000.0}
        if cfg.get("rope_scaling"):
            p = dict(cfg["rope_scaling"])
            p.pop("type", None)
            p["rope_type"] = cfg["rope_scaling"].get("rope_type", cfg["rope_scaling"].get("type"))
            p["rope_theta"] = 10000.0
        out.append(("rope_theta 10000 instead of %g" % theta, set_rope(p), None))
    eps = cfg["rms_norm_eps"]
    other = 1e-5 if eps != 1e-5 else 1e-6

    def set_eps(c):
        c.rms_norm_eps = other
    out.append(("rms_norm_eps %g instead of %g" % (other, eps), set_eps, None))
    if cfg.get("sliding_window"):
        def no_window(c):
            c.sliding_window = None
        out.append(("sliding_window removed", no_window, None))
    if cfg.get("attention_bias"):
        out.append(("attention biases zeroed", None, lambda n: ".self_attn." in n and n.endswith(".bias")))
    if cfg.get("mlp_bias"):
        out.append(("mlp biases zeroed", None, lambda n: ".mlp." in n and n.endswith(".bias")))
    return out


def tiny_golden(spec, model_dir):
    cfg = spec["config"]
    tied = cfg.get("tie_word_embeddings", False)
    model = load_reference(model_dir)
    check_weights_exact(model, model_dir, tied)
    logits = forward_logits(model, TINY_TOKENS)
    assert torch.isfinite(logits).all()
    sens = {}
    for desc, cmut, smut in variants(spec):
        if cmut is not None:
            c = AutoConfig.from_pretrained(model_dir)
            cmut(c)
            m2 = load_reference(model_dir, config=c)
        else:
            m2 = load_reference(model_dir)
            with torch.no_grad():
                for n, p in m2.named_parameters():
                    if smut(n):
                        p.zero_()
        sens[desc] = float("%.3e" % rel_row_error(forward_logits(m2, TINY_TOKENS), logits))

    hc = model.config
    # every end-of-generation id that transformers sees (config.json and generation_config.json)
    gen_eos = GenerationConfig.from_pretrained(model_dir).eos_token_id
    gen_eos = gen_eos if isinstance(gen_eos, list) else [gen_eos]
    cfg_eos = hc.eos_token_id if isinstance(hc.eos_token_id, list) else [hc.eos_token_id]
    eos_ids = sorted(set(int(i) for i in cfg_eos + gen_eos if i is not None))
    info = {
        "n_vocab": hc.vocab_size,
        "n_embd": hc.hidden_size,
        "n_layer": hc.num_hidden_layers,
        "n_head": hc.num_attention_heads,
        "n_head_kv": hc.num_key_value_heads,
        "head_dim": hc.head_dim,
        "n_ff": hc.intermediate_size,
        "n_ctx_train": hc.max_position_embeddings,
        "bos_id": hc.bos_token_id,
        "eos_ids": eos_ids,
        "sliding_window": cfg.get("sliding_window") or 0,
        "tied_embeddings": 1 if tied else 0,
        "n_params": sum(p.numel() for p in model.parameters()),
        "architecture": cfg["model_type"],
    }
    return {
        "model": spec["name"],
        "covers": spec["covers"],
        "files": make_tiny_models.file_hashes(model_dir),
        "info": info,
        "reference": dict(versions(), attn_implementation="eager", dtype="float32"),
        "note": TINY_NOTE,
        "sensitivity": sens,
        "tokens": TINY_TOKENS,
        "n_vocab": hc.vocab_size,
        "logits": [[float(v) for v in row] for row in logits.tolist()],
    }


# ------------------------------------------------------------------------------------------------
# stories260K
# ------------------------------------------------------------------------------------------------


def stories_files(d):
    return {f: sha256_file(os.path.join(d, f)) for f in sorted(os.listdir(d))}


@torch.no_grad()
def stories_greedy(d, model, sp):
    bos = sp.bos_id()
    ids = torch.tensor([[bos]], dtype=torch.long)
    past = None
    tokens, margins = [], []
    for _ in range(STORIES_GREEDY_STEPS):
        out = model(input_ids=ids, past_key_values=past, use_cache=True)
        past = out.past_key_values
        row = out.logits[0, -1].to(torch.float32)
        top = torch.topk(row, 2)
        tok = int(top.indices[0])
        tokens.append(tok)
        margins.append(float("%.4e" % (top.values[0] - top.values[1]).item()))
        ids = torch.tensor([[tok]], dtype=torch.long)
    # The same 200 tokens without the cache (the whole sequence at once) must agree.
    full = model(input_ids=torch.tensor([[bos] + tokens[:-1]]), use_cache=False).logits[0]
    assert full.argmax(-1).tolist() == tokens, "cached and uncached greedy disagree"
    eos = sp.eos_id()
    return {
        "model": "stories260K",
        "files": stories_files(d),
        "reference": dict(versions(), attn_implementation="eager", dtype="float32"),
        "note": ("Greedy decoding from [BOS] alone: 200 steps of argmax over the float32 logits "
                 "(KV cache), not stopping at EOS (compare with ignore_eos). margins[i] = top1 - "
                 "top2 logit at step i; tiny margins mark steps where an engine may legitimately tie."),
        "prompt_tokens": [bos],
        "tokens": tokens,
        "eos_positions": [i for i, t in enumerate(tokens) if t == eos],
        "min_margin": min(margins),
        "margins": margins,
        "text": sp.decode(tokens),
    }


@torch.no_grad()
def stories_logits(d, model, sp):
    tokens = [sp.bos_id()] + sp.encode(STORIES_PROMPT)
    logits = forward_logits(model, tokens)
    return {
        "model": "stories260K",
        "files": stories_files(d),
        "reference": dict(versions(), attn_implementation="eager", dtype="float32"),
        "note": "logits[i]: float32 logits after tokens[:i+1]; tokens = [BOS] + SentencePiece(prompt).",
        "prompt": STORIES_PROMPT,
        "tokens": tokens,
        "n_vocab": int(logits.shape[1]),
        "logits": [[float(v) for v in row] for row in logits.tolist()],
    }


def stories_tokenize(d, sp):
    hf = AutoTokenizer.from_pretrained(d)
    try:
        from transformers.tokenization_utils_sentencepiece import SentencePieceBackend
        spb = SentencePieceBackend(vocab_file=os.path.join(d, "tokenizer.model"), legacy=True,
                                   bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    except Exception:  # older transformers: no such class
        spb = None
    cases = []
    for s in TOKENIZE_STRINGS:
        ids = [sp.bos_id()] + sp.encode(s)
        text = sp.decode(ids)
        hf_ids = hf.encode(s)
        case = {
            "text": s,
            "ids": ids,
            "pieces": [sp.id_to_piece(i) for i in ids],
            "decoded": text,
            "hf_ids": hf_ids,
            "hf_agrees": hf_ids == ids,
        }
        if spb is not None:
            case["hf_sentencepiece_backend_agrees"] = [sp.bos_id()] + spb.encode(s, add_special_tokens=False) == ids
        cases.append(case)
    return {
        "model": "stories260K",
        "files": stories_files(d),
        "reference": dict(versions(), hf_tokenizer_class=type(hf).__name__,
                          hf_tokenizer_legacy=getattr(hf, "legacy", None)),
        "flags": "EUROLLM_TOKENIZE_ADD_BOS",
        "bos_id": sp.bos_id(),
        "eos_id": sp.eos_id(),
        "note": TOKENIZER_NOTE,
        "cases": cases,
    }


# ------------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------------


def build_all(stories_dir, tmp):
    """[(filename, golden object, big key)]"""
    out = []
    for spec in make_tiny_models.MODELS:
        d = make_tiny_models.write_model(tmp, spec)
        g = tiny_golden(spec, d)
        print("%-36s sensitivity %s" % (spec["name"], g["sensitivity"]), flush=True)
        out.append((spec["name"] + ".json", g, "logits"))
    if stories_dir:
        sp = spm.SentencePieceProcessor(model_file=os.path.join(stories_dir, "tokenizer.model"))
        model = load_reference(stories_dir)
        out.append(("stories260K_greedy.json", stories_greedy(stories_dir, model, sp), None))
        out.append(("stories260K_logits.json", stories_logits(stories_dir, model, sp), "logits"))
        out.append(("stories260K_tokenize.json", stories_tokenize(stories_dir, sp), None))
    return out


def compare(name, new, old):
    errs = []
    for key in ("files", "tokens", "cases", "prompt_tokens"):
        if key in new or key in old:
            a, b = new.get(key), old.get(key)
            if key == "cases" and a is not None and b is not None:
                a = [(c["text"], c["ids"], c["decoded"]) for c in a]
                b = [(c["text"], c["ids"], c["decoded"]) for c in b]
            if a != b:
                errs.append("%s differs" % key)
    if "logits" in new:
        if len(new["logits"]) != len(old.get("logits", [])):
            errs.append("logits row count differs")
        else:
            e = rel_row_error(new["logits"], old["logits"])
            print("  %-34s logits max row relative difference %.3e" % (name, e))
            if e > 1e-5:
                errs.append("logits differ by %.3e (relative, worst row)" % e)
    return errs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stories", default=None,
                    help="the stories260K model directory (Hugging Face layout); omitted: skip its goldens")
    ap.add_argument("--out", default=os.path.join(HERE, "golden"), help="golden directory")
    ap.add_argument("--check", action="store_true", help="re-verify the existing goldens, write nothing")
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory(prefix="eurollm-tiny-") as tmp:
        goldens = build_all(args.stories, tmp)

    if args.check:
        failures = 0
        for fname, obj, _ in goldens:
            path = os.path.join(args.out, fname)
            if not os.path.exists(path):
                print("MISSING %s" % path)
                failures += 1
                continue
            with open(path, encoding="utf-8") as f:
                old = json.load(f)
            # round-trip the new values through the on-disk format before comparing
            new = json.loads(json.dumps(obj))
            errs = compare(fname, new, old)
            print("%-6s %s%s" % ("FAIL" if errs else "ok", fname, (": " + "; ".join(errs)) if errs else ""))
            failures += bool(errs)
        print("%d golden file(s) checked, %d mismatch(es)" % (len(goldens), failures))
        return 1 if failures else 0

    os.makedirs(args.out, exist_ok=True)
    for fname, obj, big in goldens:
        size = write_golden(os.path.join(args.out, fname), obj, big)
        print("wrote %-40s %7d bytes" % (fname, size))
        if size >= 150 * 1024:
            print("error: %s is larger than 150 KB" % fname)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
