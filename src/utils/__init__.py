"""Shared helpers of the course «Datos de calidad y fine-tuning de LLMs», laid out by lesson.

* :mod:`utils.core` — what every notebook needs and no lesson teaches: the mini/full profiles
  (``settings``), the first cell (``notebook.start``), pre-flight checks, Spanish ``CourseError``\\ s,
  secrets, offline assets, paths, measured results, retries, exercise checks, the training
  plumbing shared by 03 and 04 (``finetune``) and the notebook catalogue (``course``).
* :mod:`utils.services` — the local servers (llama.cpp, Argilla), one process supervisor, and the
  client of the OpenAI-compatible API.
* One subpackage per notebook, importing only ``core`` and ``services``:
  01 :mod:`utils.translate`, 02 :mod:`utils.sft_dpo`, 03 :mod:`utils.good_bad`,
  04 :mod:`utils.llava_vqa`, 05 :mod:`utils.prompting`.

Tools only maintainers use (notebook sync, static checks, the Colab check) live in
``course_tools``; the full-profile rehearsal in ``rehearsal``. Importing ``utils`` is cheap and
never touches the network; heavy libraries are imported inside the functions that need them.
"""

__version__ = "0.1.0"
