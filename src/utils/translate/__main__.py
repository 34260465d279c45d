"""Command line of the translation engine.

    python -m utils.translate run INPUT OUT_DIR [--backend seq2seq|ctranslate2|openai] [--chunk-size N] [--shard i/n] ...
    python -m utils.translate run INPUT OUT_DIR --ray local|HOST:PORT [--ray-workers N] ...
    python -m utils.translate merge OUT_DIR [OUT_DIR ...] RESULT.jsonl [--force]

Defaults come from the active profile (:mod:`utils.core.settings`, section ``translate``): in
mini the seq2seq backend runs offline with no server and no download.  ``run`` resumes
whatever ``OUT_DIR`` already holds; ``merge`` checks that the shards cover every row once.
``--ray`` translates the chunks on Ray actors (:mod:`utils.translate.ray_runner`); the
commit log, the report and resume are the same.
Exit codes: 0 done; 1 bad input, settings or folder; 2 bad options; 75 stopped early
(backend down, disk full, chunks left after transient failures: run the same command
again to resume); 130 Ctrl-C (SIGINT); 143 SIGTERM.  Every error is one Spanish
message on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import functools
import json
import logging
import signal
import sys
from typing import Any

EXIT_TEMPFAIL = 75
RESUME = "vuelve a ejecutar el mismo comando para reanudar"


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised where the main thread is (never inside a commit)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _install_signal_handlers() -> None:
    from utils.translate.store import interrupt

    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if received:  # already stopping: let the report be written
            return
        received.append(signum)
        interrupt(Interrupted(signum))

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} no es un número entero") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"debe ser un entero positivo (1 o más), no {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    from utils.services.cli import SpanishArgumentParser  # argparse's own errors, said in Spanish

    parser = SpanishArgumentParser(
        prog="python -m utils.translate",
        description="Traduce al español conjuntos de conversaciones LLaVA, por bloques reanudables.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="traduce INPUT en OUT_DIR (reanuda una ejecución interrumpida)",
        description="Traduce un fichero LLaVA .json/.jsonl en OUT_DIR: ficheros de bloque, manifest.json, "
        "commits.jsonl (una línea por bloque terminado), quarantine.jsonl y report.json. Ejecutarlo de nuevo "
        "reanuda donde se paró (también tras Ctrl-C, SIGTERM o un disco lleno).",
    )
    run.add_argument("input", metavar="INPUT", help="fichero LLaVA .json (lista) o .jsonl")
    run.add_argument("out_dir", metavar="OUT_DIR", help="carpeta de salida (se crea si no existe)")
    run.add_argument(
        "--profile",
        choices=["mini", "full"],
        help="perfil de ajustes para los valores por defecto (por defecto: el activo)",
    )
    run.add_argument(
        "--backend",
        choices=["seq2seq", "ctranslate2", "openai"],
        help="modelo de traducción seq2seq, el mismo modelo en CTranslate2 (inferencia rápida en lote) "
        "o un servidor de chat compatible con OpenAI",
    )
    run.add_argument(
        "--model", help="id del modelo (seq2seq: id del Hub, carpeta o local:...; openai: nombre del modelo servido)"
    )
    run.add_argument("--chunk-size", type=_positive_int, help="filas por fichero de bloque (la unidad que se reanuda)")
    run.add_argument(
        "--batch-size", type=_positive_int, help="segmentos por llamada al modelo (openai: peticiones en paralelo)"
    )
    run.add_argument("--max-new-tokens", type=_positive_int, help="tope de tokens generados por segmento")
    run.add_argument("--num-beams", type=_positive_int, help="anchura de la búsqueda en haz en seq2seq (1 = voraz)")
    run.add_argument("--shard", default="0/1", help="traduce la parte i de n (desde 0), p. ej. 0/4 (por defecto 0/1)")
    run.add_argument("--limit", type=_positive_int, default=None, help="solo las N primeras filas de INPUT")
    run.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="dispositivo del modelo seq2seq"
    )
    run.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="precisión de seq2seq (auto: float16 en GPU, bfloat16 en CPU que lo calculan de forma nativa)",
    )
    run.add_argument(
        "--quantization",
        default="auto",
        help="precisión de ctranslate2 (auto: int8 en CPU, int8_float16 en GPU; o float32...)",
    )
    run.add_argument(
        "--threads", type=_positive_int, help="hilos de CPU del modelo seq2seq (por defecto: los núcleos libres)"
    )
    run.add_argument("--no-progress", action="store_true", help="sin barra de progreso")
    run.add_argument(
        "--ray",
        metavar="local|HOST:PORT",
        help="traduce los bloques en un clúster Ray, un modelo por actor: 'local' arranca (y para) uno en "
        "127.0.0.1 (COURSE_RAY_PORT), HOST:PORT se une a uno en marcha; los commits se hacen en este proceso",
    )
    run.add_argument(
        "--ray-workers",
        type=_positive_int,
        help="actores Ray (modelos); por defecto: uno por GPU o, sin GPU, uno por CPU",
    )
    merge = sub.add_parser(
        "merge",
        help="une los bloques de uno o varios OUT_DIR (fragmentos) en un fichero JSON Lines",
        description="Comprueba que los OUT_DIR cubren cada bloque y cada fila exactamente una vez y escribe "
        "RESULT.jsonl (filas traducidas) y RESULT.quarantine.jsonl.",
    )
    merge.add_argument("out_dirs", metavar="OUT_DIR", nargs="+", help="carpetas de salida de los fragmentos")
    merge.add_argument("result", metavar="RESULT.jsonl", help="fichero unido de salida (fuera de todo OUT_DIR)")
    merge.add_argument("--force", action="store_true", help="sobrescribe RESULT.jsonl si ya existe")
    return parser


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from utils.core.settings import get_settings
    from utils.translate.backends import make_backend
    from utils.translate.engine import run_translation
    from utils.translate.records import check_usable, load_rows
    from utils.translate.store import Shard, prepare_out_dir

    shard = Shard.parse(args.shard)  # cheap checks first: bad input fails before the model loads
    if args.ray is not None and args.ray.strip() != "local":
        from utils.services.ray_cluster import parse_address

        parse_address(args.ray)  # a typo fails before anything starts
    rows = load_rows(args.input, args.limit)
    check_usable(rows, args.input)
    prepare_out_dir(args.out_dir)
    settings = get_settings(args.profile)
    if settings.profile == "mini":
        from utils.core.notebook import go_offline

        go_offline()
    cfg = settings.translate
    options = {
        "model": args.model,
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "num_beams": args.num_beams,
        "device": args.device,
        "dtype": args.dtype,
        "quantization": args.quantization,
    }
    run = functools.partial(
        run_translation,
        args.input,
        args.out_dir,
        chunk_size=args.chunk_size or cfg.chunk_size,
        shard=shard,
        limit=args.limit,
        progress=not args.no_progress,
        rows=rows,
    )
    if args.ray is None:
        return run(make_backend(args.backend, settings=settings, threads=args.threads or "auto", **options))
    from utils.services.ray_cluster import cluster
    from utils.translate.ray_runner import RayWorkers, build_backend

    factory = functools.partial(build_backend, settings.profile, args.backend, threads=args.threads or 1, **options)
    with cluster(args.ray) as address, RayWorkers(address, factory, workers=args.ray_workers) as workers:
        return run(None, workers=workers)


def _os_error(exc: OSError, command: str) -> tuple[str, int]:
    """A Spanish message and exit code for a file-system error."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        saved = "Los bloques terminados están a salvo: " if command == "run" else "No se ha escrito nada a medias: "
        return f"No queda espacio en el disco{where}. {saved}libera espacio y {RESUME}.", EXIT_TEMPFAIL
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"No se puede escribir{where}: {exc.strerror}. Usa una carpeta en la que puedas escribir.", 1
    return f"Error de entrada/salida{where}: {exc.strerror or exc}. Corrige la causa y {RESUME}.", 1


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    from utils.core.errors import CourseError
    from utils.translate.engine import BackendUnavailableError, merge_outputs

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("utils.translate").setLevel(logging.INFO)
    _install_signal_handlers()
    code = 0
    try:
        if args.command == "run":
            report = _run(args)
            if report["chunks_deferred"]:
                print(
                    f"aviso: {len(report['chunks_deferred'])} bloque(s) no se guardaron porque el backend falló "
                    f"de forma transitoria en algunas frases; {RESUME} (solo se traducen esos bloques).",
                    file=sys.stderr,
                )
                code = EXIT_TEMPFAIL
            report = {k: v for k, v in report.items() if k != "qa"} | {
                "qa_flag_counts_rows": report["qa"]["flag_counts_rows"]
            }
        else:
            report = merge_outputs(args.out_dirs, args.result, force=args.force)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C (SIGINT)"
        saved = "Los bloques terminados están guardados" if args.command == "run" else "No se ha escrito nada a medias"
        print(f"Interrumpido por {name}. {saved}: {RESUME}.", file=sys.stderr)
        return 128 + int(signum)
    except BackendUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TEMPFAIL
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        message, code = _os_error(exc, args.command)
        print(f"error: {message}", file=sys.stderr)
        return code
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
