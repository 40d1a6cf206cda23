"""Widgets every page uses: model, colour-scale and layer/head pickers, download strips, errors, URL state and
Markdown escaping. Every widget has a ``key``; values a link should reopen live in the URL (:data:`BIND`).

Downloads: a view lists what it offers as :class:`Download` items and :func:`download_strip` shows them. The
format (:data:`attnviz.export.FORMATS`) gives the button's label suffix, MIME type and file suffix, and writes the
file when the person clicks (``on_click="ignore"``: no rerun). A download's ``make`` must not hold an
``AttentionResult``: Streamlit keeps a session's last download callables, so they name the run
(:class:`attnviz.web.runs.TextRun`...) and fetch the result from the shared cache when called.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import streamlit as st

from attnviz.export import FORMATS
from attnviz.models import list_models, model_info
from attnviz.render import COLORSCALES, DEFAULT_COLORSCALE
from attnviz.result import AttentionResult

TEXT_LIMIT_NOTICE = ("Limits: a text longer than the model's limit (512 tokens for MiniLM, about 2,000 characters "
                     "of English; 4,096 for SmolLM2, about 16,000) is cut to it, and the page says so.")

# ------------------------------------------------------------------------------------------------- pickers


LOCAL_MODELS_HELP = ("Your own models: each sub-folder of the server's models folder (`ATTNVIZ_MODELS_DIR`, "
                     "default `models`) that holds a Hugging Face model is offered here by its folder name.")


def model_picker(kind: str, key: str, default: str | None = None, bind: bool = False, label: str = "Model",
                 only_if_choice: bool = False) -> str:
    """Select box of the registered models of one kind (``"text"``, ``"image"``, ``"seq2seq"``): the built-in
    models and the folders of the local models folder of that kind (:mod:`attnviz.models.local`), by name.

    The page runs what is chosen through :func:`attnviz.web.runs.get_model`, which takes these names only: a
    value a browser sends (a URL parameter) that is not one of them, a path for instance, opens nothing.
    ``bind=True`` keeps the choice in the URL (query parameter ``key``, the model's name), so a link reopens it.
    ``only_if_choice=True`` shows no select box while there is one model of the kind (it is returned).
    """
    names = list_models(kind)
    index = names.index(default) if default in names else 0
    if only_if_choice and len(names) == 1:
        return names[0]
    if bind:  # the URL holds the formatted option, so keep it short: the name; descriptions go to the tooltip
        return st.selectbox(label, names, index=index, key=key, bind=BIND,
                            help="\n".join(f"- **{md_literal(n)}**: {md_literal(model_info(n).description)}"
                                           for n in names) + "\n\n" + LOCAL_MODELS_HELP)
    return st.selectbox(label, names, index=index, key=key, help=LOCAL_MODELS_HELP,
                        format_func=lambda n: f"{n} — {model_info(n).description}")


def colorscale_picker(key: str, where: object = st, **kwargs: object) -> str:
    """Select box of the colour scales (``where``: a container, ``st`` by default)."""
    return where.selectbox("Colour scale", COLORSCALES, index=COLORSCALES.index(DEFAULT_COLORSCALE), key=key,
                           **kwargs)


def layer_head_picker(n_layers: int, n_heads: int, prefix: str, first_layer: int = 0,
                      bind: bool = True) -> tuple[int, int]:
    """Layer and head select boxes side by side, shown as ``L3`` and ``H5`` (keys ``{prefix}_layer`` and
    ``{prefix}_head``; kept in the URL when ``bind``, so a link reopens them). A stored choice the model lacks
    (another model was chosen) is clamped to its range first; a session starts at ``first_layer`` and head 0."""
    clamp_state(f"{prefix}_layer", n_layers - 1, first_layer)
    clamp_state(f"{prefix}_head", n_heads - 1)
    row = st.container(horizontal=True)
    extra = {"bind": BIND} if bind else {}
    layer = row.selectbox("Layer", range(n_layers), key=f"{prefix}_layer", format_func=lambda i: f"L{i}",
                          width=200, **extra)
    head = row.selectbox("Head", range(n_heads), key=f"{prefix}_head", format_func=lambda i: f"H{i}", width=200,
                         **extra)
    return int(layer), int(head)


CONTRIBUTIONS_HELP = ("Show contributions instead of weights: each weight α times the norm of its key's value "
                      "through the head's output projection, α·‖f(x)‖ (Kobayashi et al. 2020, \"Attention is Not "
                      "Only a Weight\"). A key can take much of the weight yet add little to the output when its "
                      "value is small ([CLS], [SEP] and punctuation often are): contributions show what the head "
                      "actually mixes in.")


def contributions_toggle(result: AttentionResult, key: str, where: object = st, note: object = st) -> bool:
    """The "Contributions" toggle (``where``: a container) of a page showing ``result``'s heads: True when on and
    the model reports value norms. Without them it is off and disabled, and a caption (in ``note``) says why."""
    missing = result.value_norms() is None
    if missing:
        st.session_state[key] = False  # a choice made for another model: off, as shown
    on = where.toggle("Contributions", key=key, disabled=missing, help=CONTRIBUTIONS_HELP)
    if missing:
        note.caption(f"Contributions are not available for **{md_literal(result.model)}**: its attention's output "
                     "projection was not found, so the norms of its values are unknown.")
    return bool(on) and not missing


def clamp_state(key: str, upper: int, default: int = 0) -> None:
    """Keep a stored choice in ``0..upper`` before its widget is made (models differ in layers, heads, grid)."""
    value = st.session_state.get(key, default)
    st.session_state[key] = min(max(int(value), 0), upper)


# ----------------------------------------------------------------------------------------------- downloads


@dataclass(frozen=True)
class Download:
    """One file a view offers.

    Attributes:
        label: what it is, for people: ``"Focused head"`` (the button reads ``"Focused head (PNG)"``).
        fmt: its format, a key of :data:`attnviz.export.FORMATS`.
        stem: file name without the suffix.
        make: the payload the format writes (a picture, an array, a text), made on click; it must not hold a
            result (see the module).
        help: the button's tooltip.
    """

    label: str
    fmt: str
    stem: str
    make: Callable[[], object]
    help: str | None = None


def download_strip(items: Sequence[Download], key: str) -> None:
    """One row of download buttons, one per item; each file is made only when its button is clicked.

    Args:
        key: names the strip; each button's key is ``{key}_{label}_{fmt}`` (label lower-cased, words joined).
    """
    row = st.container(horizontal=True)
    for item in items:
        fmt = FORMATS[item.fmt]
        row.download_button(f"{item.label} ({fmt.label})", data=_writer(fmt.write, item.make),
                            file_name=item.stem + fmt.suffix, mime=fmt.mime, on_click="ignore",
                            key=f"{key}_{_slug(item.label)}_{item.fmt}", help=item.help)


def _writer(write: Callable[[object], bytes], make: Callable[[], object]) -> Callable[[], bytes]:
    return lambda: write(make())


def _slug(label: str) -> str:
    return re.sub(r"\W+", "_", label.lower()).strip("_")


# --------------------------------------------------------------------------------------------- messages


def spinner_if(long: bool, text: str) -> contextlib.AbstractContextManager:
    """A spinner with a running clock around work that may be ``long``; nothing for short work (a spinner is an
    element and a timer thread in every run, and shows only after half a second anyway)."""
    return st.spinner(text, show_time=True) if long else contextlib.nullcontext()


def show_value_error(e: ValueError) -> None:
    """Show a user-facing error from the library (never a traceback), as plain text: messages may quote what the
    person typed (a table cell, a file's content), which must not become Markdown."""
    st.error(md_literal(str(e)), icon="⚠️")


_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def md_literal(text: str) -> str:
    """``text`` for a Markdown element (``st.caption``, ``st.error``...), shown exactly as it is: every ASCII
    punctuation mark is backslash-escaped (CommonMark allows it for all of them), so ``**``, ``[link](…)``,
    ``:red[…]``, ``$…$`` and ``<tags>`` show as typed."""
    return _MD_SPECIAL.sub(r"\\\1", text)


# ------------------------------------------------------------------------------------------- URL state

URL_TEXT_LIMIT = 1500
"""Longest text (characters) written into the URL; longer inputs are not part of a shared link."""
URL_NOTICE = (f"The address bar keeps the model, the text (up to {URL_TEXT_LIMIT:,} characters), layer, head and "
              "view: copy it to share this view.")
BIND = "query-params"
"""Pass as ``bind=`` to a keyed widget (or ``st.tabs``) to keep its value in the URL under its key."""


def seed_from_url(key: str, param: str, default: str) -> None:
    """Before a keyed widget is made: start it from URL parameter ``param`` (first run of a session), else from
    ``default``. Create the widget *without* ``value=`` afterwards (its value comes from session state).
    For values too long for :data:`BIND` (free text); short choices should use ``bind=BIND`` instead."""
    if key not in st.session_state:
        st.session_state[key] = st.query_params.get(param, default)


def set_url_param(param: str, value: str | None, default: str | None = None, limit: int = URL_TEXT_LIMIT) -> None:
    """Write ``value`` to URL parameter ``param`` so a copied link reopens it; remove the parameter when the
    value is empty, equals ``default`` or is longer than ``limit`` characters (URLs are not for megabytes)."""
    keep = bool(value) and value != default and len(value) <= limit
    if keep and st.query_params.get(param) != value:
        st.query_params[param] = value
    elif not keep and param in st.query_params:
        del st.query_params[param]
