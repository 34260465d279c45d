"""Shared helpers of the course «Datos de calidad y fine-tuning de LLMs».

One module per concern:

* :mod:`utils.settings` — the mini/full profiles (every model id, size and count).
* :mod:`utils.notebook` — the first cell of each notebook (profile, offline mode, results).
* :mod:`utils.errors` — ``CourseError``: actionable errors shown without a stack trace.
* :mod:`utils.preflight` — checks with actionable errors before the real work starts.
* :mod:`utils.secrets` — API keys from the environment or Colab secrets, never printed.
* :mod:`utils.assets` — offline models for the mini profile.
* :mod:`utils.llm_server` / :mod:`utils.llm_client` — a local OpenAI-compatible server.
* :mod:`utils.results` — measured figures saved to ``build/results``.
* :mod:`utils.course` — the notebook catalogue, Colab badges and install pins.
* :mod:`utils.language` — offline language identification (is this Spanish?).
* :mod:`utils.retry` — retries with exponential backoff and jitter for transient errors.
* :mod:`utils.exercises` — self-checks for the ``# EJERCICIO`` cells.
* :mod:`utils.static_checks` — the full profile checked statically (keyword arguments).
* :mod:`utils.finetune` / :mod:`utils.notebook_cells` — training plumbing; notebook cells run from scripts.

Per notebook:

* 01 — :mod:`utils.translate` (engine and CLI).
* 02 — :mod:`utils.wiki_corpus`, :mod:`utils.grounded_instructions`, :mod:`utils.generation_llms`,
  :mod:`utils.task_runner`, :mod:`utils.preference_pairs`, :mod:`utils.dataset_checks`,
  :mod:`utils.data_funnel`, :mod:`utils.text_embeddings`, :mod:`utils.distilabel_pipeline`,
  :mod:`utils.argilla_server`, :mod:`utils.argilla_io`, :mod:`utils.simulated_review`.
* 03 — :mod:`utils.translation_pairs`, :mod:`utils.mt_eval`.
* 04 — :mod:`utils.vqa_data`, :mod:`utils.llava_model`, :mod:`utils.llava_training`, :mod:`utils.vqa_plots`.
* 05 — :mod:`utils.structured_output`, :mod:`utils.chatbot`, :mod:`utils.prompt_exercises`.

Importing ``utils`` is cheap and never touches the network; heavy libraries (torch,
transformers) are imported only inside the functions that need them.
"""

__version__ = "0.1.0"
