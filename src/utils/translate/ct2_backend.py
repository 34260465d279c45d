"""CTranslate2 backend: the same MT model, converted once to an inference engine.

`CTranslate2 <https://opennmt.net/CTranslate2/>`_ runs Transformer models with its own C++
kernels: int8 weights, no Python per decoding step, no padding waste.  On a CPU an int8
opus-mt model translates several times faster than transformers' ``generate`` on the same
threads; on a GPU ``int8_float16`` keeps the int8 weights and computes in float16
(``make_backend("ctranslate2")``).

The Hugging Face model (Marian/opus-mt or NLLB) is converted with
``ctranslate2.converters.TransformersConverter`` the first time, into
``<course cache>/ct2/<key>``, where the key hashes the model id (and, for a local folder,
its files), the quantization and the CTranslate2 version.  The conversion is built in a
temporary folder and renamed into place (:func:`utils.core.assets.cached_dir`), so a crash never
leaves half a model behind.  Like every backend, this one only maps a batch of sentences to
translations: protection, sentence splitting, length-sorted batches, cache and QA are the
engine's (:mod:`utils.translate.engine`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from utils.core.errors import CourseError
from utils.translate.backends import NLLB_LANGS, idle_cpu_threads

#: Quantizations (CTranslate2 "compute types") this backend accepts besides ``"auto"``.
QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")


class CTranslate2Error(CourseError):
    """A CTranslate2 setting this machine cannot use."""


def resolve_device(device: str) -> str:
    """``"auto"`` → ``"cuda"`` when CTranslate2 sees a GPU, else ``"cpu"``; other values unchanged."""
    import ctranslate2

    if device != "auto":
        return device
    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def auto_quantization(device: str) -> str:
    """int8 weights on a CPU; int8 weights with float16 arithmetic on a GPU."""
    return "int8_float16" if device == "cuda" else "int8"


def check_quantization(quantization: str, device: str) -> None:
    """Refuse, in Spanish, a quantization that does not exist or that ``device`` cannot compute.

    Raises:
        CTranslate2Error: naming the valid values for this device.
    """
    import ctranslate2

    supported = sorted(ctranslate2.get_supported_compute_types(device) & set(QUANTIZATIONS))
    where = "la GPU" if device == "cuda" else "la CPU"
    if quantization not in QUANTIZATIONS:
        raise CTranslate2Error(
            f"Cuantización desconocida para CTranslate2: {quantization!r}. Usa 'auto' o una de: "
            f"{', '.join(QUANTIZATIONS)} (en {where} de esta máquina: {', '.join(supported)})."
        )
    if quantization not in supported:
        raise CTranslate2Error(
            f"CTranslate2 no puede calcular en {quantization!r} en {where} de esta máquina. "
            f"Usa 'auto' o una de: {', '.join(supported)}."
        )


def _fingerprint(model: str) -> list[list[object]]:
    """Names, sizes and modification times of a local model folder's files (empty for Hub ids)."""
    folder = Path(model)
    if not folder.is_dir():
        return []
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(folder.iterdir()) if p.is_file()]


def conversion_key(model: str, quantization: str) -> str:
    """Cache key of a converted model: model id (and local files), quantization, CTranslate2 version."""
    import ctranslate2

    identity = {
        "model": model,
        "files": _fingerprint(model),
        "quantization": quantization,
        "ctranslate2": ctranslate2.__version__,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def converted_model_dir(model: str, quantization: str) -> Path:
    """Folder of ``model`` converted to CTranslate2 with ``quantization`` (converted on first use)."""
    from utils.core.assets import cached_dir

    def convert(out: Path) -> None:
        import ctranslate2

        with warnings.catch_warnings():  # MarianTokenizer recommends sacremoses; not needed here
            warnings.filterwarnings("ignore", message=".*sacremoses.*")
            ctranslate2.converters.TransformersConverter(model).convert(
                str(out), quantization=quantization, force=True
            )

    return cached_dir(f"ct2/{conversion_key(model, quantization)}", convert)


class CTranslate2Backend:
    """A Marian/NLLB MT model run by CTranslate2.

    Args:
        model: a Hub id or a local folder of the transformers model (see
            :func:`utils.core.assets.resolve_model`); its tokenizer is used as is.
        batch_size: segments per call.
        max_new_tokens: generation cap per segment.
        num_beams: 1 = greedy.
        min_new_tokens: force at least this many tokens (benchmarks); ``None`` in real use.
        device: ``"auto"`` (CUDA when CTranslate2 sees a GPU), ``"cpu"`` or ``"cuda"``.
        quantization: ``"auto"`` (:func:`auto_quantization`: int8 on CPU, int8_float16 on
            GPU) or one of :data:`QUANTIZATIONS`.  Part of :attr:`name` and of the
            conversion's cache key.
        threads: CPU threads: a number or ``"auto"`` (:func:`idle_cpu_threads`).
        src_lang / tgt_lang: language codes for NLLB-style models (ignored by Marian).

    Raises:
        CTranslate2Error: for a quantization that does not exist or that the device cannot
            compute, before anything is converted or loaded.
    """

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 32,
        max_new_tokens: int = 256,
        num_beams: int = 1,
        min_new_tokens: int | None = None,
        device: str = "auto",
        quantization: str = "auto",
        threads: int | Literal["auto"] | None = "auto",
        src_lang: str = NLLB_LANGS[0],
        tgt_lang: str = NLLB_LANGS[1],
    ) -> None:
        import ctranslate2
        from transformers import AutoTokenizer

        self.device = resolve_device(device)
        self.quantization = auto_quantization(self.device) if quantization == "auto" else quantization
        check_quantization(self.quantization, self.device)  # before the (slow) conversion
        self.threads = idle_cpu_threads() if threads in ("auto", None) else int(threads)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*sacremoses.*")
            self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model_dir = converted_model_dir(model, self.quantization)
        self.translator = ctranslate2.Translator(
            str(self.model_dir),
            device=self.device,
            compute_type=self.quantization,
            inter_threads=1,
            intra_threads=self.threads if self.device == "cpu" else 0,
        )
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self.min_new_tokens = min_new_tokens or 0
        self.target_prefix: list[str] | None = None
        if hasattr(self.tokenizer, "src_lang") and tgt_lang in self.tokenizer.get_vocab():
            self.tokenizer.src_lang = src_lang  # NLLB/M2M: source code prefix, target code forced
            self.target_prefix = [tgt_lang]
        self.max_input_tokens = min(int(getattr(self.tokenizer, "model_max_length", 512) or 512), 1024)
        settings = {"do_sample": False, "max_new_tokens": max_new_tokens, "num_beams": num_beams}
        if min_new_tokens:
            settings["min_new_tokens"] = min_new_tokens
        described = ",".join(f"{k}={v}" for k, v in sorted(settings.items()))
        self.name = f"ctranslate2:{model}:{described},quantization={self.quantization}"

    def translate(self, texts: Sequence[str]) -> list[str]:
        """One call to ``translate_batch`` (it sorts the batch by length itself); decoded outputs."""
        if not texts:
            return []
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_input_tokens)["input_ids"]
        sources = [self.tokenizer.convert_ids_to_tokens(row) for row in ids]
        results = self.translator.translate_batch(
            sources,
            target_prefix=[self.target_prefix] * len(sources) if self.target_prefix else None,
            max_batch_size=self.batch_size,
            beam_size=self.num_beams,
            max_decoding_length=self.max_new_tokens,
            min_decoding_length=self.min_new_tokens,
        )
        skip = len(self.target_prefix or [])  # NLLB: the forced language code opens each output
        ids = [self.tokenizer.convert_tokens_to_ids(r.hypotheses[0][skip:]) for r in results]
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True)
