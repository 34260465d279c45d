"""Issue 14 diagnostic (not collected by pytest): can the mini model learn to read the image at all?

Colour questions only, the notebook's ``encode``/``collate`` cell, LoRA + projector with the
two-rate optimizer, a plain loop (batches of 8 drawn with replacement, no clipping, no warm-up).
Prints the training loss every 10 steps, then the validation loss (validation = the train
generator with seed 7777) with each row's own image and with the images shuffled::

    PYTHONPATH=$PWD/src python benchmarks/bench_nb04_colour_only.py '[{"lr":3e-4,"plr":3e-3,"steps":40}]'

Measured 29-11-2026 (1 thread): own images 0.156, shuffled 0.767 after 40 steps, 91 CPU s.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoProcessor, LlavaForConditionalGeneration, set_seed

from course_tools.notebook_cells import run_tagged_cells
from utils.llava_vqa.llava_model import tiny_llava_dir
from utils.llava_vqa.llava_training import LANGUAGE_MODEL_LORA_TARGETS, PROJECTOR_MODULE, two_rate_optimizer
from utils.llava_vqa.vqa_data import csv_to_llava_rows, synthetic_rows

cfgs = json.loads(sys.argv[1])
torch.set_num_threads(1)
tmp = Path(tempfile.mkdtemp())
(tmp / "images").mkdir(parents=True, exist_ok=True)
rows = []
for r, im in synthetic_rows(400, seed=42, image_size=64, prefix="t"):
    if r.qtype == "color":
        im.save(tmp / r.image)
        rows.append(r)
val = []
for r, im in synthetic_rows(160, seed=7777, image_size=64, prefix="v"):
    if r.qtype == "color":
        im.save(tmp / r.image)
        val.append(r)
path = tiny_llava_dir()
processor = AutoProcessor.from_pretrained(path)
ns = run_tagged_cells(
    Path("notebooks/04_llava_vqa_lora.ipynb"), ["vqa-collator"], {"processor": processor, "data_dir": tmp}
)
enc = [ns["encode"](x) for x in csv_to_llava_rows(rows)]
venc = [ns["encode"](x) for x in csv_to_llava_rows(val)]
for cfg in cfgs:
    model = LlavaForConditionalGeneration.from_pretrained(path)
    set_seed(42)
    pm = get_peft_model(
        model,
        LoraConfig(
            r=16,
            lora_alpha=32,
            target_modules=LANGUAGE_MODEL_LORA_TARGETS,
            modules_to_save=[PROJECTOR_MODULE],
            task_type="CAUSAL_LM",
        ),
    )
    opt = two_rate_optimizer(pm, lr=cfg["lr"], projector_lr=cfg["plr"])
    g = torch.Generator().manual_seed(0)
    pm.train()
    t0 = time.process_time()
    for step in range(cfg["steps"]):
        idx = torch.randint(len(enc), (8,), generator=g).tolist()
        b = ns["collate"]([enc[i] for i in idx])
        loss = pm(**b).loss
        loss.backward()
        gp = (
            sum(p.grad.norm() ** 2 for n, p in pm.named_parameters() if p.grad is not None and PROJECTOR_MODULE in n)
            ** 0.5
        )
        opt.step()
        opt.zero_grad()
        if step % 10 == 0:
            print(step, round(loss.item(), 3), "proj grad", round(float(gp), 4), flush=True)
    pm.eval()
    with torch.no_grad():
        b = ns["collate"](venc)
        true = pm(**b).loss.item()
        b["pixel_values"] = b["pixel_values"][torch.randperm(len(venc), generator=g)]
        shuf = pm(**b).loss.item()
    print(
        json.dumps(
            {
                **cfg,
                "val_loss_true_images": round(true, 3),
                "val_loss_shuffled_images": round(shuf, 3),
                "cpu_s": round(time.process_time() - t0),
            }
        ),
        flush=True,
    )
