"""Argilla for notebook 02: connect, create the review datasets, push, annotate, pull back.

Where the server is:

* ``ARGILLA_API_URL`` + ``ARGILLA_API_KEY`` (environment or Colab secrets) — e.g. your
  Argilla Space on Hugging Face (README §Argilla);
* otherwise, in the mini profile, the course's local server (:mod:`utils.services.argilla_server`),
  started if needed.

Two datasets per run, ``<prefix>-sft`` and ``<prefix>-dpo``.  Record ids are derived from
the source article (``sft-<article id>``), so pushing again updates records instead of
duplicating them.  :func:`pull_reviews` reads the reviewers' responses back and
:func:`final_sft` / :func:`final_dpo` build the training sets from them, honouring
corrections and discards.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from utils.core.errors import CourseError
from utils.core.secrets import get_secret, mask_credentials
from utils.core.settings import CourseSettings, get_settings
from utils.sft_dpo.simulated_review import Review
from utils.sft_dpo.text_embeddings import DIMENSIONS

README_SECTION = "Argilla"
URL_ENV = "ARGILLA_API_URL"
KEY_ENV = "ARGILLA_API_KEY"
VECTOR = "instruccion_vec"
SFT_QUESTIONS = ("calidad", "usa_contexto", "respuesta_corregida")
GUIDELINES = """\
Revisa datos de entrenamiento generados por un LLM a partir de artículos de Wikipedia.

* **calidad** (SFT): 1 = incorrecta o sin sentido, 3 = correcta pero mejorable, 5 = excelente.
* **¿usa el contexto?**: sí, si la respuesta se apoya en el artículo mostrado.
* **ranking** (DPO): ordena las respuestas de mejor a peor.
* **respuesta corregida**: si la respuesta (o la mejor respuesta) tiene errores, escríbela bien.
* **Descartar**: si la pregunta no tiene sentido o no trata del artículo.
"""


class ArgillaConfigError(CourseError):
    """Argilla is not configured or a dataset does not match; the message says what to do."""


@dataclass(frozen=True)
class ArgillaTarget:
    """Where Argilla is.  ``api_key`` is never shown by ``repr``."""

    api_url: str
    api_key: str
    is_local: bool

    def __repr__(self) -> str:
        return f"ArgillaTarget(api_url={self.api_url!r}, local={self.is_local})"


def resolve_target(settings: CourseSettings | None = None) -> ArgillaTarget:
    """``ARGILLA_API_URL``/``ARGILLA_API_KEY`` if set, else the local server (mini only).

    Raises:
        MissingSecretError: ``Falta ARGILLA_API_KEY: …; ver README §Argilla`` (or the
            URL, in the full profile), saying where to set it.
    """
    from utils.services.argilla_server import LOCAL_API_KEY, default_config

    settings = settings or get_settings()
    url = get_secret(URL_ENV, required=False)
    if url:
        key = get_secret(KEY_ENV, readme_section=README_SECTION)
        return ArgillaTarget(api_url=url.strip().rstrip("/"), api_key=str(key), is_local=False)
    if settings.profile == "mini":
        return ArgillaTarget(api_url=default_config().api_url, api_key=LOCAL_API_KEY, is_local=True)
    get_secret(URL_ENV, readme_section=README_SECTION)  # raises with the how-to
    raise AssertionError("unreachable")  # pragma: no cover


def connect(settings: CourseSettings | None = None, *, start_local: bool = True):
    """An ``argilla.Argilla`` client; starts the local server first if that is the target.

    Raises:
        ArgillaConfigError: in Spanish, when the server refuses the key, cannot be reached
            or is not Argilla: which variable to fix and where (Colab secrets / export).
    """
    import argilla as rg

    target = resolve_target(settings)
    if target.is_local and start_local:
        from utils.services.argilla_server import ensure_running

        ensure_running()
    try:
        return rg.Argilla(api_url=target.api_url, api_key=target.api_key, timeout=120)
    except Exception as exc:  # noqa: BLE001 - the SDK's and httpx's own errors, in English, as a traceback
        raise ArgillaConfigError(connection_advice(target, exc)) from None


def connection_advice(target: ArgillaTarget, exc: BaseException) -> str:
    """What went wrong connecting to Argilla and how to fix it, in Spanish."""
    kind = type(exc).__name__
    url = mask_credentials(target.api_url)
    how_to_set = (
        "en los secretos de Colab (panel 🔑, con el acceso del cuaderno activado) o con "
        f"`export NOMBRE=…` antes de arrancar Jupyter; después vuelve a ejecutar esta celda (README §{README_SECTION})"
    )
    if target.is_local:
        return (
            f"El servidor de Argilla en {url} no acepta la conexión del curso ({kind}). Puede ser otro "
            "programa o un Argilla con otra clave en ese puerto: ejecuta `scripts/argilla_server status`, "
            "y `scripts/argilla_server stop` o elige otro puerto con `export COURSE_ARGILLA_PORT=6901`."
        )
    if kind in {"ArgillaCredentialsError", "UnauthorizedError", "ForbiddenError"}:
        return (
            f"Argilla en {url} rechaza la clave: {KEY_ENV} no es válida para ese servidor. Copia la "
            f"API key de tu usuario (en Argilla: menú de tu usuario → «My settings») y ponla en {KEY_ENV} "
            + how_to_set.replace("NOMBRE", KEY_ENV)
            + f". Si la clave es buena, comprueba que {URL_ENV} es tu Space y no otro."
        )
    if kind == "UnsupportedProtocol":
        problem = f"{URL_ENV} ({url}) no empieza por https://"
    elif kind in {"ConnectError", "ConnectTimeout", "ReadTimeout", "TimeoutException", "RemoteProtocolError"}:
        problem = (
            f"no se puede conectar con {url} ({kind}): el Space puede estar parado o arrancando "
            "(ábrelo en el navegador y espera a «Running»), o la URL tiene una errata"
        )
    else:  # it answers, but not as Argilla's API (e.g. the Space's page, or a path after the host)
        problem = f"{url} responde, pero no es la API de Argilla ({kind})"
    return (
        f"Argilla: {problem}. {URL_ENV} debe ser la URL directa del Space, "
        "`https://<usuario>-<space>.hf.space`, sin nada detrás (en el Space: menú ⋮ → «Embed this Space» → "
        "«Direct URL»). Corrígela " + how_to_set.replace("NOMBRE", URL_ENV) + "."
    )


# --------------------------------------------------------------------------- dataset settings


def _common_fields(rg) -> list:
    return [
        rg.TextField(name="titulo", title="Artículo", use_markdown=False),
        rg.TextField(name="contexto", title="Contexto (lo que vio el generador)", use_markdown=False),
    ]


def _correction_question(rg, title: str):
    return rg.TextQuestion(name="respuesta_corregida", title=title, required=False, use_markdown=False)


def _instruction_vector(rg) -> list:
    return [rg.VectorField(name=VECTOR, title="Instrucción (USE multilingüe)", dimensions=DIMENSIONS)]


def sft_settings():
    """Fields, questions, metadata and vector of the SFT review dataset."""
    import argilla as rg

    return rg.Settings(
        guidelines=GUIDELINES,
        fields=[*_common_fields(rg), rg.ChatField(name="conversacion", title="Conversación generada")],
        questions=[
            rg.RatingQuestion(name="calidad", title="¿Qué calidad tiene la respuesta? (1–5)", values=[1, 2, 3, 4, 5]),
            rg.LabelQuestion(name="usa_contexto", title="¿Usa el contexto?", labels={"si": "Sí", "no": "No"}),
            _correction_question(rg, "Respuesta corregida (vacío si está bien)"),
        ],
        metadata=[
            rg.IntegerMetadataProperty(name="chars_instruccion", title="Caracteres de la instrucción"),
            rg.IntegerMetadataProperty(name="chars_respuesta", title="Caracteres de la respuesta"),
            rg.FloatMetadataProperty(name="nota_juez", title="Nota del juez (1–5)"),
            rg.FloatMetadataProperty(name="solapamiento", title="Palabras de la respuesta presentes en el artículo"),
        ],
        vectors=_instruction_vector(rg),
    )


def dpo_settings(candidates: int):
    """Fields, questions, metadata and vector of the DPO review dataset."""
    import argilla as rg

    names = {f"respuesta_{i}": f"Respuesta {i}" for i in range(1, candidates + 1)}
    return rg.Settings(
        guidelines=GUIDELINES,
        fields=[
            *_common_fields(rg),
            rg.TextField(name="instruccion", title="Instrucción", use_markdown=False),
            *[rg.TextField(name=name, title=title, use_markdown=False) for name, title in names.items()],
        ],
        questions=[
            rg.RankingQuestion(name="ranking", title="Ordena las respuestas de mejor a peor", values=names),
            _correction_question(rg, "Mejor respuesta corregida (vacío si está bien)"),
        ],
        metadata=[
            rg.FloatMetadataProperty(name="nota_max", title="Nota más alta del juez"),
            rg.FloatMetadataProperty(name="margen_juez", title="Diferencia entre la mejor y la peor nota"),
        ],
        vectors=_instruction_vector(rg),
    )


def ensure_dataset(client, name: str, workspace: str, settings):
    """The dataset ``name`` in ``workspace``, created with ``settings`` if it does not exist.

    Raises:
        ArgillaConfigError: when a dataset with that name exists with other fields or
            questions (e.g. from another version of the notebook).
    """
    import argilla as rg

    if client.workspaces(workspace) is None:
        rg.Workspace(name=workspace, client=client).create()
    with warnings.catch_warnings():  # "dataset not found" is expected the first time
        warnings.simplefilter("ignore", UserWarning)
        dataset = client.datasets(name=name, workspace=workspace)
    if dataset is None:
        return rg.Dataset(name=name, workspace=workspace, settings=settings, client=client).create()
    want = ({f.name for f in settings.fields}, {q.name for q in settings.questions})
    have = ({f.name for f in dataset.settings.fields}, {q.name for q in dataset.settings.questions})
    if want != have:
        raise ArgillaConfigError(
            f"El dataset de Argilla {workspace}/{name} ya existe con otros campos o preguntas "
            f"(tiene {sorted(have[0] | have[1])}; este cuaderno necesita {sorted(want[0] | want[1])}), "
            "quizá de otra versión del cuaderno. Bórralo en Argilla (ajustes del dataset → Delete) o usa "
            'otro nombre: `nb = start("02_datos_sft_dpo_distilabel_argilla", argilla_dataset_prefix="mi-prefijo")`.'
        )
    return dataset


# --------------------------------------------------------------------------- records


def record_id(kind: str, article_id: str) -> str:
    """Deterministic record id: the same article always maps to the same record."""
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", str(article_id))


def agent_name(text: str) -> str:
    """A suggestion agent name Argilla accepts (ASCII letters, digits, ``-_:./`` and spaces)."""
    return re.sub(r"[^A-Za-z0-9_:./\s-]+", "-", text).strip("-") or "agent"


def sft_record(
    row: dict[str, Any],
    vector: Sequence[float],
    judge_rating: int | None,
    grounding: float,
    judge: str = "ultrafeedback",
):
    """An SFT record from a generated row (``article_id``, ``title``, ``content``, ``conversation``).

    Suggestions: the judge's rating of this answer (``calidad``) and a lexical-overlap
    guess for ``usa_contexto`` (``grounding`` = share of answer words found in the article).
    """
    import argilla as rg

    suggestions = [rg.Suggestion("usa_contexto", "si" if grounding >= 0.5 else "no", agent="solapamiento-lexico")]
    if judge_rating is not None:
        suggestions.append(rg.Suggestion("calidad", int(judge_rating), agent=agent_name(judge)))
    return rg.Record(
        id=record_id("sft", row["article_id"]),
        fields={"titulo": row["title"], "contexto": row["content"], "conversacion": row["conversation"]},
        metadata={
            "chars_instruccion": len(row["instruction"]),
            "chars_respuesta": len(row["response"]),
            "nota_juez": float(judge_rating) if judge_rating is not None else None,
            "solapamiento": round(grounding, 3),
        },
        vectors={VECTOR: [float(x) for x in vector]},
        suggestions=suggestions,
    )


def judge_ranking(ratings: Sequence[int | None]) -> list[str] | None:
    """The judge's ratings as a ranking suggestion: ``respuesta_i`` names, best first.

    Suggestions carry an order only (ties keep the candidates' order); ``None`` when a
    rating is missing.
    """
    if not ratings or any(r is None for r in ratings):
        return None
    return [f"respuesta_{i + 1}" for i in sorted(range(len(ratings)), key=lambda i: -ratings[i])]


def dpo_record(row: dict[str, Any], vector: Sequence[float], judge: str = "ultrafeedback"):
    """A DPO record from a judged row (``generations``, ``ratings``, ``rationales``…)."""
    import argilla as rg

    ratings = row.get("ratings") or [None] * len(row["generations"])
    fields = {"titulo": row["title"], "contexto": row["content"], "instruccion": row["instruction"]}
    fields |= {f"respuesta_{i}": text for i, text in enumerate(row["generations"], 1)}
    ranking = judge_ranking(ratings)
    known = [r for r in ratings if r is not None]
    return rg.Record(
        id=record_id("dpo", row["article_id"]),
        fields=fields,
        metadata={
            "nota_max": float(max(known)) if known else None,
            "margen_juez": float(max(known) - min(known)) if known else None,
        },
        vectors={VECTOR: [float(x) for x in vector]},
        suggestions=[rg.Suggestion("ranking", ranking, agent=agent_name(judge))] if ranking else [],
    )


def push(dataset, records: list) -> int:
    """Add or update ``records`` (upsert by id); return how many records the dataset holds."""
    if records:
        with _quiet_responses():  # re-push: the server sends back earlier reviews too
            _log(dataset, records)
    return count_records(dataset)


def _log(dataset, records: list) -> None:
    """Upsert ``records`` in batches the server accepts (no "batch size normalized" notice)."""
    dataset.records.log(records, batch_size=min(len(records), 100))


def count_records(dataset) -> int:
    """Records in ``dataset`` on the server."""
    return sum(1 for _ in dataset.records(with_suggestions=False, with_responses=False))


@contextlib.contextmanager
def _quiet_responses():
    """The SDK warns that a response's ``user_id`` will be filled in: expected here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`user_id` not provided", category=UserWarning)
        yield


def submit_reviews(dataset, reviews: dict[str, Review], user_id) -> int:
    """Submit ``reviews`` (record id → :class:`Review`) as ``user_id``'s responses.

    This is what a person does by clicking *Submit* or *Discard* in the UI; the notebook
    uses it to simulate reviewers in mini/CI.  Returns how many records got a response.
    """
    import argilla as rg

    updated = []
    with _quiet_responses():
        # Read without responses: the new ones replace this user's earlier review (re-runs).
        for record in dataset.records(with_suggestions=False, with_responses=False):
            review = reviews.get(record.id)
            if review is None:
                continue
            values = {k: _to_response_value(dataset, k, v) for k, v in review.values.items()}
            if review.status == "discarded":  # a discard may carry no answers at all
                values = values or {next(iter(dataset.settings.questions)).name: None}
            for question, value in values.items():
                record.responses.add(rg.Response(question, value, user_id=user_id, status=review.status))
            updated.append(record)
        if updated:
            _log(dataset, updated)
    return len(updated)


def _to_response_value(dataset, question: str, value: Any) -> Any:
    """Ranking answers need explicit ranks in the 2.8 API."""
    import argilla as rg

    if isinstance(dataset.settings.questions[question], rg.RankingQuestion) and value and isinstance(value[0], str):
        return [{"value": v, "rank": rank} for rank, v in enumerate(value, 1)]
    return value


@dataclass
class PulledRecord:
    """A record as reviewed: its fields, the review status and the answers of one reviewer."""

    id: str
    fields: dict[str, Any]
    status: str | None  # "submitted", "discarded", or None when nobody reviewed it yet
    values: dict[str, Any] = field(default_factory=dict)


def _answer(value: Any) -> Any:
    """A stored answer as a plain value; a ranking becomes its values, best first."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and "value" in v for v in value):
        return [v["value"] for v in sorted(value, key=lambda v: v.get("rank") or 0)]
    return value


def pull_reviews(dataset, ids: Iterable[str] | None = None) -> list[PulledRecord]:
    """The records (optionally only ``ids``) with the first reviewer's status and answers.

    Reads each record's stored user responses: the SDK's per-question ``Response`` objects
    leave out a discard without answers and the ranks of a ranking.
    """
    wanted = set(ids) if ids is not None else None
    pulled = []
    with _quiet_responses():
        for record in dataset.records(with_suggestions=False, with_responses=True):
            if wanted is not None and record.id not in wanted:
                continue
            stored = list(getattr(record._model, "responses", None) or [])
            status, values = None, {}
            if stored:
                first = stored[0]
                status = getattr(first.status, "value", first.status)
                values = {name: _answer(item.get("value")) for name, item in (first.values or {}).items()}
            fields = {k: _plain(v) for k, v in record.fields.to_dict().items()}
            pulled.append(PulledRecord(id=record.id, fields=fields, status=status, values=values))
    return pulled


def _plain(value: Any) -> Any:
    """ChatField values come back as objects: turn them into ``{"role", "content"}`` dicts."""
    if isinstance(value, list):
        return [{"role": v.role, "content": v.content} if hasattr(v, "role") else v for v in value]
    return value


def final_sft(pulled: Sequence[PulledRecord], min_quality: int = 3) -> list[dict[str, Any]]:
    """SFT rows (``messages``) from reviewed records.

    Kept: submitted records rated ``min_quality`` or more, and any submitted record with a
    correction (the corrected answer replaces the generated one).  Dropped: discarded
    records, records nobody reviewed, low-rated records without a correction.
    """
    rows = []
    for rec in pulled:
        if rec.status != "submitted":
            continue
        conversation = [dict(turn) for turn in rec.fields["conversacion"]]
        corrected = (rec.values.get("respuesta_corregida") or "").strip()
        if corrected:
            conversation[-1]["content"] = corrected
        elif (rec.values.get("calidad") or 0) < min_quality:
            continue
        rows.append({"id": rec.id, "messages": conversation, "corregida": bool(corrected)})
    return rows


def final_dpo(pulled: Sequence[PulledRecord]) -> list[dict[str, Any]]:
    """DPO rows (``prompt``/``chosen``/``rejected``) from reviewed records.

    Chosen is the reviewer's first-ranked answer (or their correction of it), rejected the
    last-ranked one.  Discarded and unreviewed records are dropped, and so is a pair whose
    two texts are the same.
    """
    rows = []
    for rec in pulled:
        ranking = rec.values.get("ranking") or []
        if rec.status != "submitted" or len(ranking) < 2:
            continue
        chosen = (rec.values.get("respuesta_corregida") or "").strip() or rec.fields[ranking[0]]
        rejected = rec.fields[ranking[-1]]
        if chosen.strip() == rejected.strip():
            continue
        rows.append(
            {
                "id": rec.id,
                "prompt": [{"role": "user", "content": rec.fields["instruccion"]}],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    return rows


def review_counts(pulled: Sequence[PulledRecord]) -> dict[str, int]:
    """How many records were reviewed (submitted or discarded), discarded and corrected."""
    return {
        "annotated": sum(1 for p in pulled if p.status in ("submitted", "discarded")),
        "discarded": sum(1 for p in pulled if p.status == "discarded"),
        "corrected": sum(1 for p in pulled if (p.values.get("respuesta_corregida") or "").strip()),
    }


def judge_agreement(judged: Sequence[dict[str, Any]], pulled: Sequence[PulledRecord]) -> tuple[int, float | None]:
    """How often the judge's best answer is the reviewer's first-ranked one.

    Only records where the judge had a strict favourite and the reviewer ranked count.

    Returns:
        (records compared, share in agreement or ``None`` when none compare).
    """
    best = {}
    for row in judged:
        ratings = row.get("ratings") or []
        if ratings and None not in ratings and len(set(ratings)) > 1:
            best[record_id("dpo", row["article_id"])] = f"respuesta_{ratings.index(max(ratings)) + 1}"
    pairs = [(best[p.id], p.values["ranking"][0]) for p in pulled if p.id in best and p.values.get("ranking")]
    if not pairs:
        return 0, None
    return len(pairs), sum(a == b for a, b in pairs) / len(pairs)


def find_similar(dataset, vector: Sequence[float], limit: int = 3) -> list[tuple[str, float]]:
    """Record ids most similar to ``vector`` (needs a search engine with vector search)."""
    import argilla as rg

    query = rg.Query(similar=rg.Similar(name=VECTOR, value=[float(x) for x in vector]))
    found = []
    for item in dataset.records(query=query, limit=limit, with_suggestions=False, with_responses=False):
        record, score = item if isinstance(item, tuple) else (item, float("nan"))
        found.append((record.id, float(score)))
    return found
