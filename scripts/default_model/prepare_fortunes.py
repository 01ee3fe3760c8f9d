#!/usr/bin/env python3
"""Multilingual training text from the Debian fortune packages (pure Python, deterministic).

    python3 scripts/default_model/prepare_fortunes.py OUTDIR [--per-language BYTES] [--min-share F]

Reads /usr/share/games/fortunes (packages fortunes, fortunes-de, -it, -es, -pl, -cs, -ga, -bg),
splits each file into its %-separated fortunes, decodes it (UTF-8, else the language's legacy
8-bit charset), drops offensive collections (off/), de-duplicates, caps every language at the same
number of bytes so that the big collections do not drown the small ones, repeats the training part
of a small collection until it holds --min-share of that cap (default 0.25: Irish has 12 KB of
proverbs against 400 KB of German; once, it was 0.4% of the text and the model never learned it),
and writes:

  OUTDIR/corpus.txt     one fortune per line (newlines kept as spaces), for spm_train
  OUTDIR/train.jsonl    {"text": ...} per fortune, shuffled with a fixed seed
  OUTDIR/val.jsonl      2% of each language, held out
  OUTDIR/stats.json     fortunes and bytes per language
"""
import hashlib
import json
import os
import random
import re
import sys

ROOT = "/usr/share/games/fortunes"
# language -> (files or directories under ROOT, fallback charset)
SOURCES = {
    "en": (["fortunes", "literature", "people", "wisdom", "humorists", "science", "art", "education",
            "food", "love", "pets", "platitudes", "politics", "work", "kids", "men-women"], "latin-1"),
    "de": (["de"], "latin-1"),
    "it": (["it"], "latin-1"),
    "es": (["es"], "latin-1"),
    "pl": (["pl"], "iso-8859-2"),
    "cs": (["cs"], "iso-8859-2"),
    "ga": (["ga"], "latin-1"),
    "bg": (["bg"], "cp1251"),
}


def files_of(entry):
    path = os.path.join(ROOT, entry)
    if os.path.isdir(path):
        out = []
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if name.endswith((".dat", ".u8")) or os.path.islink(full) or os.path.isdir(full) or name == "off":
                continue
            out.append(full)
        return out
    return [path] if os.path.isfile(path) else []


def decode(raw, fallback):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode(fallback, errors="replace")


def clean(text):
    lines = [l.rstrip() for l in text.replace("\r", "").split("\n")]
    text = " ".join(l.strip() for l in lines if l.strip())
    return " ".join(text.split())


# fortunes-it writes every accented final vowel as the vowel and an apostrophe, in ASCII: "e'" for
# "è" (4058 times, and no "è" at all), "piu'", "perche'", "cosi'". A model trained on that never sees
# "è" and drifts out of Italian after a prompt that has it ("La vita è"). Final-vowel apostrophes
# become the accented letter (grave; acute in -ché); "po'" (poco) is a true elision and stays, and so
# does a quoted nickname such as `Zuse'.
GRAVE = {"a": "à", "e": "è", "i": "ì", "o": "ò", "u": "ù", "A": "À", "E": "È", "I": "Ì", "O": "Ò", "U": "Ù"}
FINAL_APOSTROPHE = re.compile(r"(?<![`'\w])(\w*)([aeiouAEIOU])'(?=[\s.,;:!?)\"»-]|$)")


def italian_accents(text):
    def accent(m):
        stem, vowel = m.group(1), m.group(2)
        if (stem + vowel).lower() == "po":
            return m.group(0)
        if vowel in "eE" and stem.lower().endswith("ch"):
            return stem + ("é" if vowel == "e" else "É")
        return stem + GRAVE[vowel]
    return FINAL_APOSTROPHE.sub(accent, text)


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    out = argv[1]
    cap = int(argv[argv.index("--per-language") + 1]) if "--per-language" in argv else 400000
    min_share = float(argv[argv.index("--min-share") + 1]) if "--min-share" in argv else 0.25
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1234)
    train, val, stats = [], [], {}
    seen = set()
    for lang, (entries, fallback) in SOURCES.items():
        items = []
        for entry in entries:
            for path in files_of(entry):
                with open(path, "rb") as f:
                    text = decode(f.read(), fallback)
                for chunk in text.split("\n%\n"):
                    t = clean(chunk.strip("%\n "))
                    if lang == "it":
                        t = italian_accents(t)
                    if len(t) < 12 or len(t) > 600:
                        continue
                    h = hashlib.sha1(t.encode("utf-8")).digest()
                    if h in seen:
                        continue
                    seen.add(h)
                    items.append(t)
        rng.shuffle(items)
        kept, size = [], 0
        for t in items:
            if size >= cap:
                break
            kept.append(t)
            size += len(t.encode("utf-8"))
        n_val = max(1, len(kept) // 50)
        val += [(lang, t) for t in kept[:n_val]]
        own = kept[n_val:]
        rows, train_bytes = list(own), sum(len(t.encode("utf-8")) for t in own)
        while own and train_bytes < min_share * cap:  # repeat a small collection (held-out part excluded)
            for t in own:
                rows.append(t)
                train_bytes += len(t.encode("utf-8"))
        train += [(lang, t) for t in rows]
        stats[lang] = {"fortunes": len(kept), "bytes": size, "val": n_val, "train_bytes": train_bytes,
                       "repeats": round(len(rows) / max(1, len(own)), 2)}
    rng.shuffle(train)
    with open(os.path.join(out, "corpus.txt"), "w", encoding="utf-8") as f:
        for _, t in train:
            f.write(t + "\n")
    for name, rows in (("train.jsonl", train), ("val.jsonl", val)):
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            for lang, t in rows:
                f.write(json.dumps({"text": t, "lang": lang}, ensure_ascii=False) + "\n")
    with open(os.path.join(out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1, sort_keys=True)
    print(json.dumps(stats, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
