"""A page script's messages handed to Streamlit in bursts instead of one by one.

Streamlit sends each element a script writes (a heading, a widget, an image) as a message of its own, flushing what
has queued up every 10 ms, and the browser re-renders the whole page for each batch that arrives on its own: on the
Text page that is 10-20 ms of the renderer's main thread per batch, whatever the batch holds. A 512-token text run
reached the browser in 6 batches when the server was idle and in 8-10 when three sessions ran at once
(``bench/collide.py``: the model run and the figures sit between the elements), each a re-render of a half-built
page.

:func:`coalesced` holds the messages of a block and hands them over together: when the block ends, or
:data:`WINDOW_S` after the first one held (so a spinner or progress bar still shows while the script works). Each
message is still offered, as it is written, to Streamlit's check for a newer rerun or a stop, so the script is
interrupted where it would have been; what it wrote before that is handed over all the same, as Streamlit would
have sent it.

Measured (before and after run alternately): a text run now takes 4-5 sends, an image upload 4 instead of 11-13;
Chromium's CPU per text run 0.44-0.47 -> 0.38-0.40 s and per upload 0.66-0.69 -> 0.54-0.60 s
(``bench/browser_cost.py``). Latency did not improve measurably: three people pressing Run at once took, after /
before, 1.08x at p50 and 1.06x at p95 on average over four ``bench/collide.py`` pairs, within their spread; all of a
run's drawing now waits for the script's end, where part of it used to overlap the script.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from streamlit.runtime.scriptrunner import get_script_run_ctx

WINDOW_S = 0.25
"""Longest a message is held (seconds): a progress bar moves at least four times a second."""


class _Held:
    """The messages held for one script thread, and the timer that hands them over if the script stalls."""

    def __init__(self, send: Callable, window_s: float) -> None:
        self.send = send
        self.window_s = window_s
        self.messages: list = []
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None
        self.owner = threading.get_ident()
        # Streamlit's yield point (raises to stop or rerun the script); only the script thread may call it.
        self.check: Callable[[], None] | None = getattr(getattr(send, "__self__", None),
                                                       "_maybe_handle_execution_control_request", None)

    def hold(self, msg) -> None:  # noqa: ANN001 - a ForwardMsg
        if self.check is not None and threading.get_ident() == self.owner:
            self.check()
        with self.lock:
            self.messages.append(msg)
            if self.timer is None:
                self.timer = threading.Timer(self.window_s, self.release)
                self.timer.daemon = True
                self.timer.start()

    def release(self) -> None:
        """Hand every held message to Streamlit, in order. Called off the script thread (the timer's, or a helper
        at the end of the block), where Streamlit's check does not run again: after ``st.stop()`` it would raise
        at the first message and drop the rest, which Streamlit itself had already sent."""
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            messages, self.messages = self.messages, []
            for msg in messages:
                self.send(msg)


@contextmanager
def coalesced(window_s: float = WINDOW_S) -> Iterator[None]:
    """Within the block, the script's messages reach Streamlit together (see the module's docstring). Outside a
    Streamlit script run, or nested in another such block, it does nothing."""
    ctx = get_script_run_ctx(suppress_warning=True)
    send = getattr(ctx, "_enqueue", None)
    if ctx is None or send is None or isinstance(getattr(send, "__self__", None), _Held):
        yield
        return
    held = _Held(send, window_s)
    ctx._enqueue = held.hold
    try:
        yield
    finally:
        ctx._enqueue = send
        helper = threading.Thread(target=held.release, name="attnviz-coalesce")
        helper.start()
        helper.join()
