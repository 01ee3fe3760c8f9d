"""The samples in samples/python run, and print what the C API generates for the same settings."""

import subprocess
import sys

import pytest

from conftest import REPO

SAMPLES = REPO / "samples" / "python"


def run(script, *args, stdin=""):
    # the interpreter running the tests, so the sample imports the same eurollm
    return subprocess.run([sys.executable, str(SAMPLES / script), *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_generate_sample_matches_c_api(stories, cctx):
    prompt = "Once upon a time"
    r = run("generate.py", stories, "-p", prompt, "--temp", "0", "-n", "60", "--threads", "1", "--ctx", "256")
    assert r.returncode == 0, r.stderr
    want = cctx.generate_text(prompt.encode(), temperature=0.0, max_tokens=60).decode()
    assert r.stdout == prompt + want + "\n"


def test_generate_sample_reports_errors(tmp_path):
    r = run("generate.py", tmp_path / "missing")
    assert r.returncode == 1 and "error:" in r.stderr and "ERR_IO" in r.stderr
    assert "Traceback" not in r.stderr


def test_chat_sample_matches_c_api_and_reuses_the_cache(stories, cmodel, cctx):
    r = run("chat.py", stories, "--temp", "0", "-n", "30", "--threads", "1", "--ctx", "256",
            stdin="Tell me a story\nWhat happened next?\n\n")
    assert r.returncode == 0, r.stderr
    # stories260K has no chat template: ChatML. Turn 1 from scratch:
    turn1 = "<|im_start|>user\nTell me a story<|im_end|>\n<|im_start|>assistant\n"
    _, reply1, _ = cctx.run_generator(cmodel.tokenize(turn1.encode(), 4), stop_strings=["<|im_end|>"],
                                      temperature=0.0, max_tokens=30)
    reply1 = reply1.decode()
    assert r.stdout.startswith(reply1 + "\n")
    # turn 2 continues the same sequence with only the new text
    turn2 = "<|im_end|>\n<|im_start|>user\nWhat happened next?<|im_end|>\n<|im_start|>assistant\n"
    _, reply2, _ = cctx.run_generator(cmodel.tokenize(turn2.encode(), 2), stop_strings=["<|im_end|>"],
                                      temperature=0.0, max_tokens=30)
    assert r.stdout == reply1 + "\n" + reply2.decode() + "\n"


def test_embed_sample_scores_match_c_api(stories, cmodel, cctx):
    docs = ["The dog barked at the cat.", "Lily ate an apple.", "A big dog ran in the park."]
    r = run("embed.py", stories, "a dog", "-", "--threads", "1", stdin="\n".join(docs) + "\n")
    assert r.returncode == 0, r.stderr
    vecs = cctx.embed_texts([d.encode() for d in docs], pooling=0, normalize=True)
    query = cctx.embed_texts([b"a dog"], pooling=0, normalize=True)[0]
    scores = vecs @ query
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3
    for line, i in zip(lines, scores.argsort()[::-1]):
        score, name = line.split()[:2]
        assert name == f"stdin:{i + 1}" and float(score) == pytest.approx(scores[i], abs=1e-4)
