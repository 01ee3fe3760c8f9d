#!/usr/bin/env python3
"""Write the fine-tuning texts of the stories260K training tests (pure Python, deterministic).

    python3 tests/data/train/make_stories_data.py    # writes stories_train.jsonl, stories_heldout.jsonl

Short TinyStories-like texts about one recurring cast (Tom the dog, Sue the cat, a red ball in the
park), so that 50 steps of fine-tuning measurably lower the loss on held-out texts of the same kind
(drawn with another seed, so no held-out text is a training text).
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["Tom", "Sue", "Ben", "Lily", "Max"]
ANIMALS = ["dog", "cat", "bird", "fish", "bunny"]
PLACES = ["park", "garden", "house", "forest", "pond"]
THINGS = ["red ball", "big box", "blue hat", "little boat", "shiny toy"]
FEELINGS = ["happy", "sad", "scared", "excited", "tired"]


def story(r):
    n, a, p, t, f = (r.choice(x) for x in (NAMES, ANIMALS, PLACES, THINGS, FEELINGS))
    friend = r.choice([x for x in NAMES if x != n])
    parts = [
        "Once upon a time, there was a little %s named %s." % (a, n),
        "%s liked to play in the %s with a %s." % (n, p, t),
        "One day, %s lost the %s and felt %s." % (n, t, f),
        "%s came to help. They looked and looked." % friend,
        "At last they found the %s under a tree." % t,
        "%s said, \"Thank you, %s! You are my best friend.\"" % (n, friend),
        "They played in the %s all day and were very happy." % p,
    ]
    return " ".join(parts)


def write(path, seed, count):
    r = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for _ in range(count):
            f.write(json.dumps({"text": story(r)}) + "\n")


if __name__ == "__main__":
    write(os.path.join(HERE, "stories_train.jsonl"), 1, 160)
    write(os.path.join(HERE, "stories_heldout.jsonl"), 2, 24)
