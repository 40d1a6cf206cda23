"""Command line: ``python -m attnviz export --model minilm --text "..." --out DIR``; ``corpus`` is in
:mod:`attnviz.corpus.cli`."""
from __future__ import annotations

import argparse
import logging
import sys

from attnviz.corpus import cli as corpus_cli
from attnviz.models import AttentionModel, list_models, load_model
from attnviz.render.colors import COLORSCALES, DEFAULT_COLORSCALE

log = logging.getLogger("attnviz.cli")


def _head(spec: str) -> tuple[int, int]:
    try:
        layer, head = spec.replace(":", ",").split(",")
        return int(layer), int(head)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LAYER,HEAD such as 3,5; got {spec!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="attnviz", description="Attention maps of real transformer models.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the available models")
    e = sub.add_parser("export", help="run a model and write its attention as files")
    e.add_argument("--model", default=None, help=f"a name ({', '.join(list_models())}) or a local model directory")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="input text (text models)")
    src.add_argument("--image", help="input image file (image models)")
    e.add_argument("--image-size", type=int, default=None, metavar="PX",
                   help="side in pixels the image is read at (with --image; DINOv2: 224 to 518 in steps of 14)")
    e.add_argument("--text-pair", default=None, help="second text of a sentence pair (with --text; text encoders)")
    e.add_argument("--out", required=True, help="output directory")
    e.add_argument("--csv", action="append", type=_head, default=[], metavar="LAYER,HEAD",
                   help="also write this head's weights as CSV (repeatable)")
    e.add_argument("--colorscale", default=DEFAULT_COLORSCALE, choices=COLORSCALES)
    e.set_defaults(usage=e)  # flag combinations checked after parsing are reported with export's usage line
    corpus_cli.add_parser(sub)
    return p


def _check_model_flags(args: argparse.Namespace, model: AttentionModel) -> None:
    """Usage error (exit 2) for an input the model would ignore: text for an image model, an image for a text
    model, or ``--text-pair`` for a model that reads one text (an image, seq2seq or causal model)."""
    if args.image is not None and model.kind != "image":
        args.usage.error(f"{model.name} reads text, not images: give it --text instead of --image")
    if args.image is None and model.kind == "image":
        args.usage.error(f"{model.name} reads images, not text: give it --image instead of --text")
    if args.text_pair is not None and model.kind != "text":
        args.usage.error(f"--text-pair needs a text model; {model.name} is a {model.kind} model that reads one text")
    if args.text_pair is not None and model.causal:
        args.usage.error(f"--text-pair needs an encoder; {model.name} is a causal model that reads one text")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "models":
        for name in list_models():
            sys.stdout.write(name + "\n")
        return 0
    if args.command == "corpus":
        return args.handler(args)
    if args.image is not None and args.text_pair is not None:
        args.usage.error("--text-pair is the second text of a sentence pair: use it with --text, not with --image")
    if args.image is None and args.image_size is not None:
        args.usage.error("--image-size is the side an image is read at: use it with --image")
    from attnviz.export import export_result

    try:
        model = load_model(args.model or ("dinov2-small" if args.image is not None else "minilm"))
        _check_model_flags(args, model)
        if args.image is not None:
            from attnviz.images import load_image

            result = model.run(image=load_image(args.image), image_size=args.image_size)
        else:
            result = model.run(text=args.text, text_pair=args.text_pair)
        if result.truncated:
            log.warning("input truncated to %d tokens", result.n_tokens)
        export_result(result, args.out, args.colorscale, tuple(args.csv),
                      skipped=lambda why: sys.stderr.write(f"attnviz: {why}\n"))
    except ValueError as e:
        sys.stderr.write(f"attnviz: {e}\n")
        return 2
    except OSError as e:  # an --image that cannot be read, an --out that is a file or not writable, a full disk...
        where = f": {e.filename}" if e.filename else ""
        sys.stderr.write(f"attnviz: {e.strerror or e}{where}\n")
        return 1
    return 0
