#!/usr/bin/env python3
"""Golden outputs for libeurollm's chat-template renderer (src/chat).

Renders every conversation below with the published chat templates stored in templates/
through transformers' own apply_chat_template(..., tokenize=False), and writes the
conversations and the exact strings to goldens.json. The C++ test
(tests/unit/chat/test_chat_goldens.cpp) must reproduce every string byte for byte, and the
error cases must fail there too.

The tokenizer is a minimal PreTrainedTokenizerFast whose only special tokens are the model's
bos/eos tokens, so the template sees exactly what it sees with the real tokenizer:
messages, tools, documents, add_generation_prompt, bos_token, eos_token and extra kwargs.

Run in the reference virtualenv (it needs transformers and tokenizers, not torch):
    ~/.venvs/eurollm-ref/bin/python tests/data/chat/make_chat_goldens.py          # write
    ~/.venvs/eurollm-ref/bin/python tests/data/chat/make_chat_goldens.py --check  # verify
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "templates")
GOLDENS = os.path.join(HERE, "goldens.json")

# template file -> special tokens of the model (from the models' tokenizer configs)
MODELS = {
    "EuroLLM-9B-Instruct.jinja": {"bos_token": "<s>", "eos_token": "<|im_end|>"},
    "salamandra-7b-instruct.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "occiglot-7b-eu5-instruct.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "Mistral-7B-Instruct-v0.1.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "Mistral-7B-Instruct-v0.2.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "Mistral-7B-Instruct-v0.3.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "Teuken-7B-instruct-commercial-v0.4.default.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "Teuken-7B-instruct-commercial-v0.4.DE.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "Teuken-7B-instruct-commercial-v0.4.FR.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "Teuken-7B-instruct-commercial-v0.4.PL.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "Teuken-7B-instruct-commercial-v0.4.EL.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "Teuken-7B-instruct-commercial-v0.4.BG.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "Teuken-7B-instruct-commercial-v0.4.GA.jinja": {"bos_token": "<s>", "eos_token": "</s>"},
    "chatml.jinja": {},
}


def sys_(text):
    return {"role": "system", "content": text}


def user(text):
    return {"role": "user", "content": text}


def asst(text):
    return {"role": "assistant", "content": text}


# Conversations in several EU languages (German, French, Polish, Greek, Bulgarian, Irish).
CONV = {
    "de_single": [user("Wie heißt die Hauptstadt von Österreich? Antworte kurz, bitte.")],
    "fr_system": [
        sys_("Tu es un assistant serviable. Réponds toujours en français."),
        user("Qu'est-ce qu'un « chat template » ? Explique-le en deux phrases."),
    ],
    "pl_el_multiturn": [
        sys_("Jesteś pomocnym asystentem. Odpowiadaj zwięźle."),
        user("Jak się mówi „dziękuję” po grecku?"),
        asst("Po grecku mówi się „ευχαριστώ” (efcharistó)."),
        user("Πώς λέγεται «καλημέρα» στα πολωνικά;"),
    ],
    "bg_ga_no_system": [
        user("Здравей! Как се казваш?"),
        asst("Здравей! Аз съм езиков модел."),
        user("Dia duit! Conas atá tú inniu?"),
        asst("Tá mé go maith, go raibh maith agat."),
    ],
    "whitespace": [
        sys_("  System with spaces  \n"),
        user("\n  Grüß Gott  \n\n"),
        asst("  Servus!  "),
        user("Tab\there, newline\nthere, quotes \"'` and braces {{ }} {% %}"),
    ],
}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Wetter für eine Stadt abrufen (Météo, Pogoda, Καιρός)",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "Name der Stadt, z. B. Zürich"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    }
]

TOOL_CONV = [
    user("Wie ist das Wetter in Zürich?"),
    {
        "role": "assistant",
        "tool_calls": [
            {"id": "abc123XYZ", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}}
        ],
    },
    {"role": "tool", "tool_call_id": "abc123XYZ", "content": "{\"temperature\": 21.5, \"condition\": \"sonnig\"}"},
    asst("In Zürich ist es sonnig bei 21,5 °C."),
    user("Und in Łódź?"),
]


def cases():
    out = []

    def add(name, template, messages, add_generation_prompt=True, extra=None):
        out.append({"name": name, "template": template, "add_generation_prompt": add_generation_prompt,
                    "messages": messages, "extra": extra or {}})

    general = ["EuroLLM-9B-Instruct.jinja", "salamandra-7b-instruct.jinja", "occiglot-7b-eu5-instruct.jinja",
               "chatml.jinja"]
    for t in general:
        for conv, msgs in CONV.items():
            add(f"{t}:{conv}", t, msgs, True)
        add(f"{t}:pl_el_multiturn:no_gen", t, CONV["pl_el_multiturn"], False)
        add(f"{t}:bg_ga_no_system:no_gen", t, CONV["bg_ga_no_system"], False)

    # Salamandra: date_string variable, and a role it rejects
    add("salamandra-7b-instruct.jinja:date_string", "salamandra-7b-instruct.jinja", CONV["de_single"], True,
        {"date_string": "2025-01-31"})
    add("salamandra-7b-instruct.jinja:tool_role_error", "salamandra-7b-instruct.jinja",
        [user("a"), {"role": "tool", "content": "b"}], True)
    add("salamandra-7b-instruct.jinja:alternation_error", "salamandra-7b-instruct.jinja", [user("a"), user("b")], True)

    # Mistral: [INST] format, with raise_exception on roles that do not alternate
    for v in ("v0.1", "v0.2", "v0.3"):
        t = f"Mistral-7B-Instruct-{v}.jinja"
        add(f"{t}:de_single", t, CONV["de_single"], True)
        add(f"{t}:bg_ga_no_system", t, CONV["bg_ga_no_system"], False)
        add(f"{t}:pl_el_user_last", t, CONV["pl_el_multiturn"][1:], True)
        add(f"{t}:alternation_error", t, [user("Hallo"), user("Bonjour")], True)
        add(f"{t}:assistant_first_error", t, [asst("Γεια σας"), user("Cześć")], True)
        if v == "v0.1":
            add(f"{t}:system_error", t, CONV["fr_system"], True)
        else:
            add(f"{t}:fr_system", t, CONV["fr_system"], True)
            add(f"{t}:pl_el_multiturn", t, CONV["pl_el_multiturn"], True)
            add(f"{t}:whitespace", t, [m for m in CONV["whitespace"]], True)
    t = "Mistral-7B-Instruct-v0.3.jinja"
    add(f"{t}:tools", t, TOOL_CONV, True, {"tools": TOOLS})
    add(f"{t}:tools_with_system", t, [sys_("Sei präzise.")] + TOOL_CONV, True, {"tools": TOOLS})
    add(f"{t}:bad_tool_call_id_error", t,
        [user("x"), {"role": "assistant", "tool_calls": [{"id": "short", "type": "function",
                                                           "function": {"name": "f", "arguments": {}}}]}], True)

    # Teuken: one template per language with its own system prompt
    teuken = {
        "default": CONV["bg_ga_no_system"][:3],
        "DE": CONV["de_single"],
        "FR": [user("Bonjour ! Ça va ?"), asst("Très bien, merci."), user("Où se trouve l'Élysée ?")],
        "PL": [user("Gdzie leży Kraków?"), asst("Kraków leży w Małopolsce."), user("A Wrocław?")],
        "EL": CONV["pl_el_multiturn"][3:],
        "BG": CONV["bg_ga_no_system"][:2],
        "GA": [user("Cén t-am é?")],
    }
    for lang, msgs in teuken.items():
        t = f"Teuken-7B-instruct-commercial-v0.4.{lang}.jinja"
        add(f"{t}:gen", t, msgs, True)
        add(f"{t}:no_gen", t, msgs, False)
    add("Teuken-7B-instruct-commercial-v0.4.DE.jinja:system_error", "Teuken-7B-instruct-commercial-v0.4.DE.jinja",
        CONV["fr_system"], True)
    return out


def make_tokenizer(bos, eos):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    kw = {}
    vocab = {}
    for name, tok in (("bos_token", bos), ("eos_token", eos)):
        if tok:
            kw[name] = tok
            vocab.setdefault(tok, len(vocab))
    if not vocab:
        vocab = {"x": 0}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token=None)), **kw)


def render(case):
    tokens = MODELS[case["template"]]
    tok = make_tokenizer(tokens.get("bos_token"), tokens.get("eos_token"))
    with open(os.path.join(TEMPLATES, case["template"]), encoding="utf-8", newline="") as f:
        template = f.read()
    extra = dict(case["extra"])
    tools = extra.pop("tools", None)
    documents = extra.pop("documents", None)
    try:
        text = tok.apply_chat_template(case["messages"], chat_template=template, tools=tools, documents=documents,
                                       add_generation_prompt=case["add_generation_prompt"], tokenize=False, **extra)
        return {"expected": text}
    except Exception as e:  # the template refused the conversation (raise_exception, ...)
        return {"expected_error": str(e), "error_type": type(e).__name__}


def build():
    import jinja2
    import transformers

    out = {
        "generator": "tests/data/chat/make_chat_goldens.py",
        "reference": "transformers PreTrainedTokenizerBase.apply_chat_template(tokenize=False)",
        "transformers_version": transformers.__version__,
        "jinja2_version": jinja2.__version__,
        "special_tokens": MODELS,
        "cases": [],
    }
    for case in cases():
        tokens = MODELS[case["template"]]
        entry = {"name": case["name"], "template": case["template"],
                 "bos_token": tokens.get("bos_token", ""), "eos_token": tokens.get("eos_token", ""),
                 "add_generation_prompt": case["add_generation_prompt"], "messages": case["messages"],
                 "extra": case["extra"]}
        entry.update(render(case))
        out["cases"].append(entry)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="re-render and compare with the stored goldens.json")
    args = ap.parse_args()
    fresh = build()
    if args.check:
        with open(GOLDENS, encoding="utf-8") as f:
            stored = json.load(f)
        bad = 0
        stored_cases = {c["name"]: c for c in stored["cases"]}
        for c in fresh["cases"]:
            s = stored_cases.get(c["name"])
            if s is None or s != c:
                bad += 1
                print(f"MISMATCH {c['name']}", file=sys.stderr)
        missing = set(stored_cases) - {c["name"] for c in fresh["cases"]}
        for name in sorted(missing):
            bad += 1
            print(f"STALE {name} (in goldens.json, no longer generated)", file=sys.stderr)
        print(f"checked {len(fresh['cases'])} cases with transformers {fresh['transformers_version']} "
              f"(goldens made with {stored.get('transformers_version')}): {bad} mismatches")
        return 1 if bad else 0
    with open(GOLDENS, "w", encoding="utf-8", newline="\n") as f:
        json.dump(fresh, f, ensure_ascii=False, indent=1)
        f.write("\n")
    n_err = sum(1 for c in fresh["cases"] if "expected_error" in c)
    print(f"wrote {GOLDENS}: {len(fresh['cases'])} cases ({n_err} expected errors), "
          f"transformers {fresh['transformers_version']}, jinja2 {fresh['jinja2_version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
