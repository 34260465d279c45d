"""Stand-ins for notebook 01 (translate LLaVA-Instruct-150K to Spanish), full profile.

Repos and the source of each layout:

* ``liuhaotian/LLaVA-Instruct-150K`` (dataset) — the notebook downloads one file,
  ``llava_instruct_150k.json``, with ``hf_hub_download`` (``utils.translate.records.input_file``).
  Layout from the repo's file listing (huggingface.co/datasets/liuhaotian/LLaVA-Instruct-150K,
  "Files and versions": README.md plus one JSON file per subset; ``llava_instruct_150k.json``
  is a single JSON array) and from the first real row quoted in ``shared/real-data``: rows
  ``{"id": "<12-digit COCO id>", "image": "<id>.jpg", "conversations": [{"from": "human"|"gpt",
  "value": str}, ...]}``; the first human turn carries ``<image>`` before (``"<image>\\n…"``) or
  after (``"…\\n<image>"``) the question; ids repeat when one image has several tasks
  (conversation, detailed description, complex reasoning — the three kinds of the set).  The
  rows here are GENERATED from templates (no real text is copied): :data:`ROWS` rows, more than
  the full profile's 2000, of the three kinds, with numbers, lists and multi-paragraph answers
  like the real ones, and — like the real sample — no code blocks.  The other subset files of
  the repo (``complex_reasoning_77k.json`` …) are not used by the course and are left out.
* ``Helsinki-NLP/opus-mt-en-es`` (model) — a ``MarianMTModel`` with the real config's keys and
  special ids (vocab 65,001, ``</s>``=0, ``<pad>``=65000, shared embeddings, sinusoidal
  positions, swish) at tiny sizes (d_model 32, 1+1 layers), random weights, and a
  ``MarianTokenizer`` (source/target SentencePiece + vocab.json) trained here on the
  generated English; same files as ``utils.translate.mini_model`` writes for mini.
  The full settings decode with ``num_beams=4, max_new_tokens=256``.  A random model never
  picks ``</s>`` (measured: every segment ran the 256 steps × 4 beams, ~5 s per sentence on
  2 busy cores), and a constant bias on ``</s>`` only switches between "always empty" and
  "never ends".  So two weights of the real class are shaped (:func:`shape_eos`): the
  embedding row of ``</s>`` (tied to the output layer, as in the real model) points along the
  decoder's sinusoidal position embedding of step :data:`EOS_STEP`, and ``final_logits_bias``
  (a buffer the real checkpoint ships, zeros there) puts the threshold just below it: ``</s>``
  wins at that step, so every output has :data:`EOS_STEP` tokens of random subwords (nearly
  the same for every input: the random decoder is dominated by its position embeddings).
  Ids without a SentencePiece behind them are pushed to -1e4, as in mini.  The decoding code
  path (beams, batching, cache, resume, fallbacks) is the real one; only the length and the
  content of the random outputs are shaped.
* ``Qwen/Qwen2.5-1.5B-Instruct-GGUF`` — the llama.cpp server's model for the notebook's chat
  (LLM) backend: :func:`rehearsal.standins.common.qwen25_gguf`.
"""

from __future__ import annotations

import random

from rehearsal.hub import HubTree
from rehearsal.standins.common import qwen25_gguf, write_json, write_readme

DATASET = "liuhaotian/LLaVA-Instruct-150K"
DATASET_FILE = "llava_instruct_150k.json"
MT_MODEL = "Helsinki-NLP/opus-mt-en-es"
#: Rows in the stand-in file (the full profile translates the first 2000).
ROWS = 2400
SEED = 150
#: Tiny sizes of the stand-in Marian model (the real one: d_model 512, 6+6 layers, 8 heads, ffn 2048).
TINY_MARIAN = {
    "d_model": 32,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
}
#: Decoder step at which </s> wins (see :func:`shape_eos`), and the gain of its embedding row.
EOS_STEP = 6
EOS_GAIN = 10.0
TOKENIZER_VOCAB = 2000

# --------------------------------------------------------------------------- generated rows

OBJECTS = [
    "bus",
    "dog",
    "cat",
    "train",
    "bicycle",
    "pizza",
    "laptop",
    "umbrella",
    "horse",
    "kite",
    "surfboard",
    "giraffe",
    "clock",
    "bench",
    "boat",
    "skateboard",
    "sandwich",
    "elephant",
    "motorcycle",
    "teddy bear",
    "fire hydrant",
    "traffic light",
    "refrigerator",
    "suitcase",
]
COLORS = ["red", "white", "blue", "green", "yellow", "black", "brown", "orange", "gray", "pink"]
PLACES = [
    "on a busy city street",
    "in a grassy park",
    "on a sandy beach",
    "in a small kitchen",
    "next to a wooden fence",
    "in front of a brick building",
    "at a train station",
    "in a snowy field",
    "inside a living room",
    "near a river",
]
PEOPLE = [
    "a man",
    "a woman",
    "a young boy",
    "a little girl",
    "two people",
    "a group of friends",
    "an older man",
    "a family",
]
ACTIONS = [
    "standing",
    "sitting",
    "walking",
    "waiting",
    "playing",
    "looking at the camera",
    "eating",
    "holding an umbrella",
    "riding",
    "talking",
]
WHY = [
    "to stay safe in traffic",
    "because the weather looks cold",
    "to enjoy a sunny afternoon",
    "since it is a popular place for tourists",
    "because they are waiting for a ride",
    "to keep the food warm",
    "so that everyone can see it clearly",
]


def _turn_q(rng: random.Random, obj: str) -> str:
    return rng.choice(
        [
            f"What color is the {obj} in the image?",
            f"How many {obj}s can be seen in the picture?",
            f"Where is the {obj} located?",
            f"What is the person next to the {obj} doing?",
            f"Is the {obj} moving or parked?",
            "What time of day does it appear to be?",
            "What is the main object in the image?",
        ]
    )


def _turn_a(rng: random.Random, obj: str) -> str:
    n = rng.randint(2, 9)
    return rng.choice(
        [
            f"The {obj} in the image is {rng.choice(COLORS)} and {rng.choice(COLORS)}.",
            f"There are {n} {obj}s in the picture, and {rng.randint(1, n)} of them are {rng.choice(COLORS)}.",
            f"The {obj} is located {rng.choice(PLACES)}.",
            f"{rng.choice(PEOPLE).capitalize()} is {rng.choice(ACTIONS)} next to the {obj}.",
            f"It appears to be late afternoon, around {rng.randint(3, 6)} p.m., judging by the long shadows.",
            f"The main object in the image is a {rng.choice(COLORS)} {obj} {rng.choice(PLACES)}.",
        ]
    )


def _conversation(rng: random.Random, obj: str) -> list[dict[str, str]]:
    turns = []
    for _ in range(rng.randint(1, 4)):
        turns += [{"from": "human", "value": _turn_q(rng, obj)}, {"from": "gpt", "value": _turn_a(rng, obj)}]
    return turns


def _detail(rng: random.Random, obj: str) -> list[dict[str, str]]:
    question = rng.choice(
        [
            "Can you describe the main features of this image for me?",
            "What do you see happening in this image?",
            "Explain the visual content of the image in great detail.",
            "Describe the following image.",
        ]
    )
    sentences = [
        f"The image shows {rng.choice(PEOPLE)} {rng.choice(ACTIONS)} {rng.choice(PLACES)}.",
        f"A {rng.choice(COLORS)} {obj} stands out in the scene, with {rng.randint(2, 12)} other objects around it.",
        f"In the background, there is a {rng.choice(COLORS)} {rng.choice(OBJECTS)} and a {rng.choice(OBJECTS)}.",
        "The scene suggests a typical day, and the people seem relaxed.",
    ]
    rng.shuffle(sentences)
    answer = " ".join(sentences[:3]) + "\n\n" + sentences[3]
    return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]


def _reasoning(rng: random.Random, obj: str) -> list[dict[str, str]]:
    question = rng.choice(
        [
            f"Why might the {obj} be in this location?",
            f"What could be a reason for the people to gather near the {obj}?",
            f"What safety concerns might arise from the position of the {obj}?",
        ]
    )
    answer = (
        f"The {obj} might be there {rng.choice(WHY)}. "
        f"Several factors support this: 1. the {obj} is {rng.choice(PLACES)}; "
        f"2. {rng.choice(PEOPLE)} {rng.choice(['is', 'are'])} {rng.choice(ACTIONS)} nearby; "
        f"3. there are {rng.randint(2, 20)} {rng.choice(OBJECTS)}s around. "
        f"Overall, the setting indicates that the {obj} is used {rng.choice(WHY)}."
    )
    return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]


def generate_rows(count: int = ROWS, seed: int = SEED) -> list[dict]:
    """LLaVA-Instruct-150K-shaped rows (see the module docstring), deterministic for a seed."""
    rng = random.Random(seed)
    rows: list[dict] = []
    while len(rows) < count:
        image_id = f"{rng.randint(1, 581_000):012d}"
        obj = rng.choice(OBJECTS)
        kinds = rng.sample([_conversation, _detail, _reasoning], k=rng.choice([1, 1, 2, 3]))
        for kind in kinds:  # one image, several tasks: the id repeats, as in the real file
            turns = kind(rng, obj)
            first = turns[0]["value"]
            turns[0]["value"] = f"{first}\n<image>" if rng.random() < 0.5 else f"<image>\n{first}"
            rows.append({"id": image_id, "image": f"{image_id}.jpg", "conversations": turns})
    return rows[:count]


def english_lines(rows: list[dict]) -> list[str]:
    """The English text of the rows, one line per sentence group (tokenizer training corpus)."""
    lines = []
    for row in rows:
        for turn in row["conversations"]:
            lines += [line.strip() for line in turn["value"].replace("<image>", " ").splitlines() if line.strip()]
    return lines


# --------------------------------------------------------------------------- build


def build_dataset(hub: HubTree, rows: list[dict]) -> None:
    repo = hub.dataset(DATASET)
    write_readme(
        repo,
        {
            "license": "cc-by-4.0",
            "task_categories": ["visual-question-answering", "question-answering"],
            "language": ["en"],
            "pretty_name": "LLaVA Visual Instruct 150K",
            "size_categories": ["100K<n<1M"],
        },
        "# LLaVA Visual Instruct 150K (rehearsal stand-in: generated rows in the real layout)\n",
    )
    write_json(repo / DATASET_FILE, rows)


def shape_eos(model, used: int, step: int = EOS_STEP, gain: float = EOS_GAIN) -> None:
    """Make ``</s>`` (id 0) the decoder's choice at ``step``; keep ids >= ``used`` unreachable.

    With random weights of std 0.02 the decoder's hidden state is dominated by its sinusoidal
    position embedding, so the ``</s>`` logit ``≈ gain·sqrt(d)·cos(pos(t), pos(step)) + bias``
    peaks at ``step``; the bias puts the threshold halfway between steps ``step-1`` and ``step``.
    """
    import torch

    positions = model.model.decoder.embed_positions.weight.detach()[: step + 2].float()
    normed = (positions - positions.mean(-1, keepdim=True)) / positions.std(-1, keepdim=True, unbiased=False)
    target = normed[step] / normed[step].norm()
    cos = (normed @ target) / normed.norm(dim=-1)
    threshold = float(cos[step - 1] + cos[step]) / 2
    with torch.no_grad():
        model.model.shared.weight[0] = gain * target
        model.final_logits_bias[:, used:] = -1e4  # no piece behind these ids (and never <pad>)
        model.final_logits_bias[:, 0] = -gain * normed.shape[-1] ** 0.5 * threshold


def build_mt_model(hub: HubTree, rows: list[dict]) -> None:
    import torch
    from transformers import MarianConfig, MarianMTModel

    from utils.translate.mini_model import (
        OPUS_MT_EN_ES_CONFIG,
        first_unused_id,
        opus_mt_generation_config,
        write_marian_tokenizer,
    )

    repo = hub.model(MT_MODEL)
    tokenizer = write_marian_tokenizer(repo, english_lines(rows), TOKENIZER_VOCAB)
    used = first_unused_id(tokenizer)  # ids 0 .. used-1 are real pieces; then fillers, 65000 is <pad>
    torch.manual_seed(SEED)
    model = MarianMTModel(MarianConfig(**{**OPUS_MT_EN_ES_CONFIG, **TINY_MARIAN})).eval()
    shape_eos(model, used)
    model.generation_config = opus_mt_generation_config()
    model.save_pretrained(repo)


def build(hub: HubTree) -> None:
    rows = generate_rows()
    build_dataset(hub, rows)
    build_mt_model(hub, rows)
    qwen25_gguf(hub)
