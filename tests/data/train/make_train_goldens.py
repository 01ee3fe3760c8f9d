#!/usr/bin/env python3
"""Gradient goldens of the training tests: PyTorch autograd on the tiny models (and PEFT LoRA).

Runs in the reference virtual environment, never in CI:

    ~/.venvs/eurollm-ref/bin/python tests/data/train/make_train_goldens.py          # write
    ~/.venvs/eurollm-ref/bin/python tests/data/train/make_train_goldens.py --check  # re-check
    (--only CASE, repeatable, writes or checks just those cases)

For every case in CASES it builds the tiny model with tests/data/make_tiny_models.py (pure
Python, deterministic), loads it in transformers (float32, eager attention), runs one forward on
fixed token ids with fixed labels (-100 = ignored) and writes to tests/data/train/golden/:

  <case>.json                 model, mode, batch shape, tokens, labels, the loss, per-tensor norms
  <case>.grads.safetensors    the gradient of every trainable tensor (float32), named as
                              transformers names the weights (full) or as PEFT saves the adapter
  <case>.adapter/             (LoRA) the initial adapter, saved by PEFT's save_pretrained: both A
                              and B random (init_lora_weights=False) so every gradient is non-zero

The C++ test (tests/train/test_train_gradients.cpp) loads the same model, the same initial adapter,
runs libeurollm's hand-written backward pass and requires a relative error below 1e-4 per tensor.

--peft-export DIR (after the C++ test suite wrote a trained adapter there) loads that adapter in
PEFT and writes golden/peft_export_logits.safetensors: the logits PEFT computes with it, which the
C++ test compares with its own (see test_train_peft.cpp).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import make_tiny_models  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

GOLDEN = os.path.join(HERE, "golden")
B, T = 2, 12
ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# name, tiny model, mode, masking, LoRA targets
CASES = [
    ("full_mha_tied", "tiny_llama_mha_tied_f32", "full", "none", None),
    ("full_mha_tied_masked", "tiny_llama_mha_tied_f32", "full", "prompt", None),
    ("full_mqa_bias_masked", "tiny_llama_mqa_bias_headdim_f32", "full", "random", None),
    ("full_llama3rope_gqa", "tiny_llama3rope_sharded_f32", "full", "none", None),
    ("full_mistral_swa_masked", "tiny_mistral_swa_bf16", "full", "prompt", None),
    ("lora_mha_tied", "tiny_llama_mha_tied_f32", "lora", "none", ["q_proj", "v_proj"]),
    ("lora_llama3rope_all_masked", "tiny_llama3rope_sharded_f32", "lora", "prompt", ALL_TARGETS),
    ("lora_mqa_bias_all_masked", "tiny_llama_mqa_bias_headdim_f32", "lora", "random", ALL_TARGETS),
    # A bf16 frozen base: libeurollm's EXACT products through bf16 weights (AMX tiles on CPUs that
    # have them) against float32 PyTorch on the same, exactly upcast, weights.
    ("lora_mistral_swa_bf16_masked", "tiny_mistral_swa_bf16", "lora", "prompt", ALL_TARGETS),
]
LORA_R, LORA_ALPHA = 4, 8.0


def batch(case_name, masking, vocab):
    rs = np.random.RandomState(sum(map(ord, case_name)))
    tokens = rs.randint(3, min(vocab, 256), size=(B, T)).astype(np.int64)
    tokens[:, 0] = 1
    labels = tokens.copy()
    if masking == "prompt":
        labels[0, :5] = -100
        labels[1, :8] = -100
    elif masking == "random":
        labels[rs.rand(B, T) < 0.4] = -100
    return tokens, labels


def load_model(path):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    model.train()  # no dropout anywhere in these configs
    return model


def run_case(name, tiny, mode, masking, targets, models_dir, out_dir):
    path = os.path.join(models_dir, tiny)
    model = load_model(path)
    tokens, labels = batch(name, masking, model.config.vocab_size)
    meta = {"case": name, "model": tiny, "mode": mode, "B": B, "T": T,
            "tokens": tokens.flatten().tolist(), "labels": labels.flatten().tolist()}
    if mode == "lora":
        from peft import LoraConfig, get_peft_model
        torch.manual_seed(1234)
        cfg = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=targets,
                         init_lora_weights=False, bias="none")
        model = get_peft_model(model, cfg)
        adapter_dir = os.path.join(out_dir, name + ".adapter")
        if os.path.isdir(adapter_dir):
            shutil.rmtree(adapter_dir)
        model.save_pretrained(adapter_dir)
        meta.update({"lora_r": LORA_R, "lora_alpha": LORA_ALPHA, "lora_targets": targets})
    out = model(input_ids=torch.tensor(tokens), labels=torch.tensor(labels))
    out.loss.backward()
    grads = {}
    for pname, p in model.named_parameters():
        if not p.requires_grad or p.grad is None:
            continue
        key = pname.replace(".default", "") if mode == "lora" else pname
        grads[key] = p.grad.detach().float().contiguous().clone()
    if mode == "full" and model.config.tie_word_embeddings:
        grads.pop("lm_head.weight", None)  # the same tensor as the embedding
    meta["loss"] = float(out.loss)
    meta["grad_norms"] = {k: float(v.norm()) for k, v in sorted(grads.items())}
    return meta, grads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--out", default=GOLDEN)
    ap.add_argument("--peft-export", help="a libeurollm-exported adapter dir to load in PEFT")
    ap.add_argument("--peft-export-model", default="tiny_llama3rope_sharded_f32")
    ap.add_argument("--only", action="append", help="a case name (repeatable): write or check just these")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        models_dir = os.path.join(tmp, "models")
        os.makedirs(models_dir)
        for spec in make_tiny_models.MODELS:
            make_tiny_models.write_model(models_dir, spec)
        if args.peft_export:
            peft_export(args, models_dir)
            return
        bad = 0
        for case in CASES:
            if args.only and case[0] not in args.only:
                continue
            work = os.path.join(tmp, "check") if args.check else args.out
            os.makedirs(work, exist_ok=True)
            meta, grads = run_case(*case, models_dir, work)
            if args.check:
                old = load_file(os.path.join(args.out, case[0] + ".grads.safetensors"))
                for k, g in grads.items():
                    err = float((old[k] - g).norm() / max(float(g.norm()), 1e-30))
                    if err > 1e-5:
                        print("MISMATCH", case[0], k, err)
                        bad += 1
                print("checked", case[0], "loss", meta["loss"])
            else:
                save_file(grads, os.path.join(args.out, case[0] + ".grads.safetensors"))
                with open(os.path.join(args.out, case[0] + ".json"), "w") as f:
                    json.dump(meta, f, indent=1, sort_keys=True)
                    f.write("\n")
                print("wrote", case[0], "loss %.6f" % meta["loss"], "tensors", len(grads))
        sys.exit(1 if bad else 0)


def peft_export(args, models_dir):
    """Load an adapter exported by libeurollm in PEFT and record the logits it gives."""
    from peft import PeftModel
    base = load_model(os.path.join(models_dir, args.peft_export_model))
    model = PeftModel.from_pretrained(base, args.peft_export)
    model.eval()
    tokens = torch.tensor([[1, 17, 200, 45, 99, 3, 150, 77, 77, 230, 12, 64, 128, 5, 250, 31]])
    with torch.no_grad():
        logits = model(input_ids=tokens).logits[0].float().contiguous()
    adapter = load_file(os.path.join(args.peft_export, "adapter_model.safetensors"))
    params = dict(model.named_parameters())
    for key, value in adapter.items():  # every exported tensor landed in the PEFT model unchanged
        mine = params[key.replace(".weight", ".default.weight")]
        assert torch.equal(mine.detach(), value), key
    with torch.no_grad():
        with model.disable_adapter():
            base_logits = model(input_ids=tokens).logits[0]
    moved = float((logits - base_logits).abs().max())
    assert moved > 1e-2, "the adapter does not change the logits"
    print("PEFT loaded", len(adapter), "tensors (all equal to the file); logits", tuple(logits.shape),
          "differ from the base by up to %.3f" % moved)
    save_file({"tokens": tokens[0].int().contiguous(), "logits": logits},
              os.path.join(args.out, "peft_export_logits.safetensors"))


if __name__ == "__main__":
    main()
