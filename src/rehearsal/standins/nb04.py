"""Stand-ins for notebook 04 (LLaVA VQA with LoRA), full profile.

``llava-hf/llava-1.5-7b-hf`` — a tiny random ``LlavaForConditionalGeneration`` with the
real module names (``model.vision_tower`` CLIP, ``model.multi_modal_projector``,
``model.language_model`` Llama, ``lm_head``) and the geometry the code depends on:
CLIP-L/336 (image 336 px, patch 14 → 576 image tokens per image), ``vision_feature_layer``
-2, ``vision_feature_select_strategy`` "default", a GELU projector; stored in float16 like
the real checkpoint.  Its processor is a ``LlavaProcessor`` with a ``CLIPImageProcessor``
(resize 336 / centre crop 336, CLIP mean/std), ``patch_size`` 14,
``num_additional_image_tokens`` 1 and llava-1.5-hf's chat template ("USER: <image>\\n…
ASSISTANT:").  Sources: the model repo's ``config.json``, ``processor_config.json``,
``preprocessor_config.json`` and ``chat_template.json`` (as published by llava-hf, read
from memory of those files; the fields above are the ones the notebook reads).  The
tokenizer is a small byte-level BPE trained here with llava-1.5's special tokens
(``<s>``, ``</s>``, ``<unk>``, ``<image>``, ``<pad>``; see :func:`small_llama_like_tokenizer`
for why not Llama's or SmolLM2's); the vocabulary is padded to a multiple of 64 as in
llava-1.5 (32064).

``lmms-lab/VQAv2`` — parquet shards under ``data/`` named ``<split>-NNNNN-of-NNNNN.parquet``
for the card's three splits (validation, testdev, test), with the card's ``dataset_info``
features: question_type, multiple_choice_answer, answers (list of {answer,
answer_confidence, answer_id}), image_id, answer_type, question_id, question, image.  Source:
the dataset card's YAML header (huggingface.co/datasets/lmms-lab/VQAv2, README.md:
``configs: default, data_files: validation: data/validation-*`` …).  The real validation
split has 214 354 questions about COCO images in many shards; the stand-in has 2 400 (enough
for the full settings' 2 000 + 300 with every image in one split), several questions per
image, small JPEGs, two shards; testdev/test hold a few rows (answers empty in the real
test split too).
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from rehearsal.hub import HubTree
from rehearsal.standins.common import write_readme

MODEL_ID = "llava-hf/llava-1.5-7b-hf"
DATASET_ID = "lmms-lab/VQAv2"

#: llava-hf/llava-1.5-7b-hf chat_template.json.
LLAVA15_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}"
    "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
IMAGE_SIZE = 336
PATCH_SIZE = 14


def tokenizer_corpus() -> list[str]:
    """Text the stand-in tokenizer is trained on: the notebook's prompts, questions and answers."""
    lines = [template.format(thing=thing) for template, *_ in QUESTIONS for thing in THINGS]
    lines += [answer for _, answers, *_ in QUESTIONS for answer in answers]
    lines += [
        "USER: ASSISTANT: Answer the question using a single word or phrase.",
        "yes no red blue green white one two three four",
    ]
    return lines * 20


def small_llama_like_tokenizer(vocab_size: int = 1024):
    """A byte-level BPE tokenizer with llava-1.5's special tokens (<s>, </s>, <unk>, <image>, <pad>).

    Not Llama's SentencePiece model (not available offline): a 1 024-token vocabulary keeps
    the stand-in's output layer small.  With SmolLM2's 49 k vocabulary the logits and their
    softmax took ~90 % of every training step (profiled), and the full settings' 120 steps
    did not fit a CPU rehearsal.  Tokenization only changes the text's length in tokens; the
    notebook's code path (chat template, image tokens, label masking) is the same.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"], "pad_token": "<pad>"})
    tokenizer.padding_side = "left"  # llava-1.5-hf's tokenizer_config
    return tokenizer


def llava15(out: Path, *, seed: int = 0) -> None:
    """Write the tiny llava-1.5-7b-hf stand-in (model + processor) to ``out``."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = small_llama_like_tokenizer()
    vocab = -(-len(tokenizer) // 64) * 64
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    pad = tokenizer.pad_token_id
    eos = tokenizer.eos_token_id
    text = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=192,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        hidden_act="silu",
        tie_word_embeddings=False,
        pad_token_id=pad,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos,
    )
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        projection_dim=48,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token,
        image_seq_length=(IMAGE_SIZE // PATCH_SIZE) ** 2,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        pad_token_id=pad,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = pad
    model.generation_config.eos_token_id = eos
    model.to(torch.float16)  # the real checkpoint is stored in float16
    model.save_pretrained(out)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_resize=True,
        do_center_crop=True,
        do_normalize=True,
        do_rescale=True,
        do_convert_rgb=True,
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
        resample=3,
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA15_CHAT_TEMPLATE,
        image_token="<image>",
    )
    processor.save_pretrained(out)


#: (question template, answers, answer_type, question_type) of the stand-in's questions.
QUESTIONS = (
    ("Is there a {thing} in the picture?", ("yes", "no"), "yes/no", "is there a"),
    ("How many {thing}s are there?", ("1", "2", "3", "4"), "number", "how many"),
    ("What color is the {thing}?", ("red", "blue", "green", "white"), "other", "what color is the"),
)
THINGS = ("dog", "cat", "bus", "kite", "umbrella", "pizza")


def vqa_rows(n: int, *, start_question_id: int, seed: int, with_answers: bool = True) -> list[dict]:
    """``n`` VQAv2-shaped rows, 3 questions per (random JPEG) image."""
    from PIL import Image

    rng = random.Random(seed)
    rows = []
    image_id = start_question_id // 1000
    for i in range(n):
        if i % 3 == 0:
            image_id += rng.randint(1, 50)
            width, height = rng.choice(((64, 48), (48, 64), (64, 64)))
            colour = tuple(rng.randrange(256) for _ in range(3))
            buffer = io.BytesIO()
            Image.new("RGB", (width, height), colour).save(buffer, format="JPEG", quality=80)
            image = {"bytes": buffer.getvalue(), "path": None}
        template, answers, answer_type, question_type = QUESTIONS[i % len(QUESTIONS)]
        answer = rng.choice(answers)
        votes = [answer if rng.random() < 0.7 else rng.choice(answers) for _ in range(10)]
        rows.append(
            {
                "question_type": question_type,
                "multiple_choice_answer": answer if with_answers else "",
                "answers": [
                    {"answer": a, "answer_confidence": rng.choice(("yes", "maybe")), "answer_id": k + 1}
                    for k, a in enumerate(votes)
                ]
                if with_answers
                else [],
                "image_id": image_id,
                "answer_type": answer_type if with_answers else "",
                "question_id": start_question_id + i,
                "question": template.format(thing=rng.choice(THINGS)),
                "image": image,
            }
        )
    return rows


def vqav2_features():
    from datasets import Features, Image, Value

    return Features(
        {
            "question_type": Value("string"),
            "multiple_choice_answer": Value("string"),
            "answers": [
                {"answer": Value("string"), "answer_confidence": Value("string"), "answer_id": Value("int64")}
            ],
            "image_id": Value("int64"),
            "answer_type": Value("string"),
            "question_id": Value("int64"),
            "question": Value("string"),
            "image": Image(),
        }
    )


def vqav2(folder: Path, *, validation_rows: int = 2400, shards: int = 2) -> None:
    """Write the lmms-lab/VQAv2 stand-in: README card header + parquet shards per split."""
    from datasets import Dataset

    features = vqav2_features()
    splits = {
        "validation": vqa_rows(validation_rows, start_question_id=262148000, seed=1),
        "testdev": vqa_rows(9, start_question_id=262144000, seed=2, with_answers=False),
        "test": vqa_rows(9, start_question_id=262144500, seed=3, with_answers=False),
    }
    for split, rows in splits.items():
        parts = shards if split == "validation" else 1
        size = -(-len(rows) // parts)
        for k in range(parts):
            chunk = rows[k * size : (k + 1) * size]
            path = folder / "data" / f"{split}-{k:05d}-of-{parts:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            Dataset.from_list(chunk, features=features).to_parquet(str(path))
    header = {
        "license": "cc-by-4.0",
        "dataset_info": {
            "features": [
                {"name": "question_type", "dtype": "string"},
                {"name": "multiple_choice_answer", "dtype": "string"},
                {
                    "name": "answers",
                    "list": [
                        {"name": "answer", "dtype": "string"},
                        {"name": "answer_confidence", "dtype": "string"},
                        {"name": "answer_id", "dtype": "int64"},
                    ],
                },
                {"name": "image_id", "dtype": "int64"},
                {"name": "answer_type", "dtype": "string"},
                {"name": "question_id", "dtype": "int64"},
                {"name": "question", "dtype": "string"},
                {"name": "image", "dtype": "image"},
            ],
            "splits": [{"name": s, "num_examples": len(r)} for s, r in splits.items()],
        },
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits],
            }
        ],
    }
    write_readme(folder, header, "# VQAv2 (rehearsal stand-in: random images, lmms-lab/VQAv2's layout)\n")


def build(hub: HubTree) -> None:
    llava15(hub.model(MODEL_ID))
    vqav2(hub.dataset(DATASET_ID))
