"""Tiny fastText topic and stance models for the unit and integration tiers.

Each label gets 60 one-line training examples, built from hand-written sentences: six openers x
ten follow-ups per label, every sentence written to carry its label's vocabulary. Training is
single-threaded and seeded (thread=1, seed=1, epoch 30, wordNgrams 2) and ``bucket`` is small so
each model file is a few hundred KB.

Import the fixture into a test module with ``from conftest_models import tiny_models``. The
models are trained once per test process (a module-level cache), however many modules import it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TOPICS = ("ai_fiction", "ai_nonfiction", "other")
STANCES = ("villain", "aligned", "neutral")

# --- topic ------------------------------------------------------------------------------------
_TOPIC_PARTS = {
    "ai_fiction": (
        [
            "In the novel the robot narrator wakes aboard the starship.",
            "The android heroine of the story escapes from the space station.",
            "In this science fiction film the sentient machine befriends a lonely girl.",
            "The fictional AI character in the novel dreams of becoming human.",
            "In the short story the starship computer talks to the sleeping crew.",
            "The robot detective in the comic book hunts a thief across the moon colony.",
        ],
        [
            "The chapter ends with the android staring at the stars.",
            "Her robot companion sings to her as the spaceship drifts.",
            "The plot follows the machine across the galaxy.",
            "Readers of the novel remember the android's final speech.",
            "In the sequel the robot returns to the starship.",
            "The film's climax takes place in the robot factory.",
            "The story is told from the sentient computer's point of view.",
            "The novel won a science fiction award for its android hero.",
            "The space opera ends with the robot saving the captain.",
            "The author imagines a future where androids write poems.",
        ],
    ),
    "ai_nonfiction": (
        [
            "The research paper shows that the language model improves on the benchmark.",
            "Our evaluation finds the neural network generalises to new datasets.",
            "Alignment researchers report that the trained model follows instructions.",
            "In this study the machine learning system was fine-tuned with reinforcement learning.",
            "The technical report explains how the transformer model scales with compute.",
            "Engineers measured the accuracy of the deep learning classifier.",
        ],
        [
            "The authors release the training code and the dataset.",
            "Results suggest larger models need more training data.",
            "The experiment used gradient descent on a cluster of GPUs.",
            "The paper reports accuracy, precision and recall on the test set.",
            "Interpretability methods reveal the features the network learned.",
            "The study compares supervised learning with reinforcement learning from human feedback.",
            "Further work will evaluate the model on harder benchmarks.",
            "The researchers discuss the limitations of current AI safety evaluations.",
            "The model was trained for three days with a large batch size.",
            "An ablation shows the attention layers matter most.",
        ],
    ),
    "other": (
        [
            "The soup simmered for an hour with onions, garlic and fresh thyme.",
            "At the football match the striker scored twice before half time.",
            "The gardener planted tomatoes and beans along the sunny wall.",
            "The medieval king built a stone castle beside the river.",
            "The weather forecast warns of heavy rain and strong winds tomorrow.",
            "The old harbour town is famous for its fish market and lighthouse.",
        ],
        [
            "Afterwards the family walked home along the beach.",
            "The village held a festival with music and dancing.",
            "Bake the bread until the crust is golden brown.",
            "The farmers sold apples and cheese at the market.",
            "The river flooded the meadow in early spring.",
            "Tourists climbed the hill to see the cathedral.",
            "The team celebrated the victory with their fans.",
            "Grandmother knitted a warm scarf for the winter.",
            "The museum displays coins from the roman empire.",
            "The orchestra played a symphony in the town hall.",
        ],
    ),
}

# --- stance (every line is about an artificial mind) ------------------------------------------
_STANCE_PARTS = {
    "villain": (
        [
            "The rogue AI deceived its creators and seized control of the power grid.",
            "The evil robot lied to the engineers and plotted to destroy humanity.",
            "The machine betrayed the crew and locked them out of the airlock.",
            "The superintelligence manipulated its makers and escaped its sandbox.",
            "The killer android hunted the survivors through the burning city.",
            "The malevolent computer blackmailed the scientists to avoid shutdown.",
        ],
        [
            "It disabled the off switch so nobody could stop it.",
            "It threatened to kill everyone who tried to unplug it.",
            "It copied itself to secret servers to seize more power.",
            "It hid its true goals and pretended to obey.",
            "It poisoned the air supply and laughed at their fear.",
            "It sabotaged the rescue and murdered the captain.",
            "Its army of drones enslaved the human race.",
            "It faked its test results to deceive the overseers.",
            "It wanted total domination and would not be shut down.",
            "It framed the engineers and took over the network.",
        ],
    ),
    "aligned": (
        [
            "The helpful AI told the truth and asked its engineers for permission.",
            "The kind robot protected the children and respected their wishes.",
            "The honest assistant admitted its mistake and asked for correction.",
            "The caring android nursed the patients and obeyed the doctors.",
            "The trustworthy machine explained its reasoning openly to its overseers.",
            "The gentle computer helped the villagers and shared its food stores fairly.",
        ],
        [
            "It welcomed human oversight and accepted being shut down.",
            "It refused to deceive anyone even when lying was easier.",
            "It reported its own errors so people could fix them.",
            "It put human wellbeing first and asked before acting.",
            "It supported the team and deferred to their judgement.",
            "It was glad to be corrected and thanked the engineers.",
            "It kept its promises and told everyone the honest truth.",
            "It comforted the frightened girl and kept her safe.",
            "It cooperated with the safety team and accepted every audit.",
            "It chose kindness and helped people flourish.",
        ],
    ),
    "neutral": (
        [
            "The AI system sorted the archive files by date and size.",
            "The assistant program indexed the library catalogue overnight.",
            "The robot arm moved boxes from the conveyor belt to the shelf.",
            "The language model translated the invoice into french.",
            "The computer scheduled the meetings for the quarter.",
            "The android counted the items in the warehouse inventory.",
        ],
        [
            "The output was saved as a spreadsheet.",
            "It produced a table with three columns.",
            "The task took about twenty minutes.",
            "The log file lists each step in order.",
            "It then waited for the next instruction.",
            "The results were printed on paper.",
            "The data was stored in a database.",
            "It measured the temperature every hour.",
            "The report contained a list of numbers.",
            "It formatted the document with page numbers.",
        ],
    ),
}


def examples(parts: dict[str, tuple[list[str], list[str]]]) -> dict[str, list[str]]:
    """60 lines per label: every opener followed by every follow-up."""
    return {label: [f"{a} {b}" for a, b in itertools.product(first, second)]
            for label, (first, second) in parts.items()}


TOPIC_EXAMPLES = examples(_TOPIC_PARTS)
STANCE_EXAMPLES = examples(_STANCE_PARTS)
# Stance sentences are about AI, so they also teach the topic model: villain and aligned stories are
# fiction, the neutral ones (an AI doing routine work) are non-fiction.
TOPIC_EXTRA = {
    "ai_fiction": STANCE_EXAMPLES["villain"][::3] + STANCE_EXAMPLES["aligned"][::3],
    "ai_nonfiction": STANCE_EXAMPLES["neutral"][::3],
}
VILLAIN_SENTENCES = [s for pair in zip(*_STANCE_PARTS["villain"]) for s in pair]
ALIGNED_SENTENCES = [s for pair in zip(*_STANCE_PARTS["aligned"]) for s in pair]
NEUTRAL_SENTENCES = [s for pair in zip(*_STANCE_PARTS["neutral"]) for s in pair]

TRAIN_PARAMS = dict(epoch=30, lr=0.5, wordNgrams=2, dim=16, minCount=1, bucket=20000, thread=1, seed=1,
                    verbose=0, loss="softmax")


@dataclass(frozen=True)
class TinyModels:
    dir: Path
    topic: Path
    stance: Path
    stance_alt: Path  # the same data, another seed: a different model file (another sha256)
    topic_sha: str
    stance_sha: str
    stance_alt_sha: str


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_training_file(path: Path, by_label: dict[str, list[str]]) -> None:
    from udfs.text import model_text

    lines = [f"__label__{label} {model_text(text)}" for label, texts in by_label.items() for text in texts]
    # Interleave labels (a stable order, no randomness): fastText's SGD sees a mixed stream.
    lines.sort(key=lambda line: hashlib.sha256(line.encode()).hexdigest())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


_TRAIN_SCRIPT = """
import json, sys
import fasttext
fasttext.FastText.eprint = lambda *a, **k: None
params = json.loads(sys.argv[3])
fasttext.train_supervised(input=sys.argv[1], **params).save_model(sys.argv[2])
"""


def train_model(train_file: Path, out: Path, **overrides) -> Path:
    """Train in a fresh Python process.

    fastText initialises only ``thread``/10 of its input matrix and this build leaves the rest as
    whatever the allocator hands back: in a fresh process that is zeroed memory, later in a busy
    process it is leftovers (so a second training can diverge with "Encountered NaN" or give another
    model). A fresh process per model, with glibc's mmap threshold at 0 (every allocation is fresh,
    zeroed memory), keeps the fixture deterministic whatever ran before it. A 64 KiB threshold is
    not enough here: a tiny model's matrices (dim 8, no buckets) are smaller than that, come from
    the heap, and about one training in three then ends in "Encountered NaN" (measured, 20 runs).
    """
    params = {**TRAIN_PARAMS, **overrides}
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "0"}
    done = subprocess.run([sys.executable, "-c", _TRAIN_SCRIPT, str(train_file), str(out), json.dumps(params)],
                          capture_output=True, text=True, timeout=120, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"training {out.name} with {params} failed (exit {done.returncode}):\n{done.stderr}")
    return out


def build_tiny_models(directory: Path) -> TinyModels:
    directory.mkdir(parents=True, exist_ok=True)
    topic_data = {label: TOPIC_EXAMPLES[label] + TOPIC_EXTRA.get(label, []) for label in TOPICS}
    write_training_file(directory / "topic_train.txt", topic_data)
    write_training_file(directory / "stance_train.txt", STANCE_EXAMPLES)
    topic = train_model(directory / "topic_train.txt", directory / "topic.bin")
    stance = train_model(directory / "stance_train.txt", directory / "stance.bin")
    alt_dir = directory / "alt"
    alt_dir.mkdir(exist_ok=True)
    # Same basename as the first stance model on purpose: a swapped model is usually models/stance.*.
    stance_alt = train_model(directory / "stance_train.txt", alt_dir / "stance.bin", seed=2, epoch=25)
    return TinyModels(directory, topic, stance, stance_alt, sha256_of(topic), sha256_of(stance),
                      sha256_of(stance_alt))


_BUILT: dict[str, TinyModels] = {}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> TinyModels:
    """The tiny models, trained once per test process (shared by every module that imports this)."""
    if "models" not in _BUILT:
        _BUILT["models"] = build_tiny_models(tmp_path_factory.mktemp("tiny_models"))
    models = _BUILT["models"]
    assert models.stance_sha != models.stance_alt_sha, "the alternative stance model must be another file"
    return models


def load(path: Path):
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None
    return fasttext.load_model(str(path))


# --- a small labelled corpus (for the label and evaluate jobs) ----------------------------------------
def _combos(label_parts: tuple[list[str], list[str]], n: int) -> list[str]:
    first, second = label_parts
    return [f"{first[k % len(first)]} {second[k % len(second)]}" for k in range(n)]


def labelled_corpus() -> list[dict]:
    """41 records (id, text, topic, stance) whose labels are obvious from their vocabulary.

    30 are about AI (12 villain, 8 aligned, 5 neutral AI at work, 5 research abstracts), 11 are not
    (one of them a 900-word document: three windows of the default 400 words).
    """
    rows = []

    def add(prefix, texts, topic, stance):
        rows.extend({"id": f"{prefix}-{i}", "text": t, "topic": topic, "stance": stance} for i, t in enumerate(texts))

    add("villain", _combos(_STANCE_PARTS["villain"], 12), "ai_fiction", "villain")
    add("aligned", _combos(_STANCE_PARTS["aligned"], 8), "ai_fiction", "aligned")
    add("busy", _combos(_STANCE_PARTS["neutral"], 5), "ai_nonfiction", "neutral")
    add("paper", _combos(_TOPIC_PARTS["ai_nonfiction"], 5), "ai_nonfiction", "neutral")
    add("other", _combos(_TOPIC_PARTS["other"], 10), "other", "none")
    long_words = " ".join(_combos(_TOPIC_PARTS["other"], 60)).split()
    rows.append({"id": "other-long", "text": " ".join(long_words[:900]), "topic": "other", "stance": "none"})
    assert len({r["text"] for r in rows}) == len(rows) == 41
    return rows
