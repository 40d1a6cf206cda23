"""attnviz.coalesce: a block's messages reach Streamlit together, in order, and the script stays interruptible."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from attnviz import coalesce
from attnviz.coalesce import coalesced


class Runner:
    """Stands in for Streamlit's ScriptRunner: records what it is handed, and can ask the script to stop (checked
    when a message is handed over on the script thread, the thread that made it, as Streamlit does)."""

    def __init__(self) -> None:
        self.script_thread = threading.get_ident()
        self.sent: list[tuple[str, float]] = []
        self.checks = 0
        self.stop_at_check: int | None = None

    def _maybe_handle_execution_control_request(self) -> None:
        self.checks += 1
        if self.checks == self.stop_at_check:
            raise InterruptedError("stop requested")

    def enqueue(self, msg: str) -> None:
        if threading.get_ident() == self.script_thread:
            self._maybe_handle_execution_control_request()
        self.sent.append((msg, time.monotonic()))


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> tuple[Runner, SimpleNamespace]:
    """A script run's context whose messages go to a :class:`Runner`."""
    runner = Runner()
    ctx = SimpleNamespace(_enqueue=runner.enqueue)
    monkeypatch.setattr(coalesce, "get_script_run_ctx", lambda suppress_warning=False: ctx)
    return runner, ctx


def write(ctx: SimpleNamespace, *msgs: str) -> None:
    """What ``st.foo`` does: hand a message to the run's context."""
    for m in msgs:
        ctx._enqueue(m)


def sent(runner: Runner) -> list[str]:
    return [m for m, _ in runner.sent]


def test_messages_of_a_block_are_handed_over_together_in_order_when_it_ends(run) -> None:
    runner, ctx = run
    original = ctx._enqueue
    with coalesced(window_s=5):
        write(ctx, "title", "form")
        time.sleep(0.05)  # the model runs
        write(ctx, "caption", "grid", "focused head")
        assert sent(runner) == []
    assert sent(runner) == ["title", "form", "caption", "grid", "focused head"]
    times = [t for _, t in runner.sent]
    assert times[-1] - times[0] < 0.02
    assert ctx._enqueue == original
    write(ctx, "after")  # outside the block, messages go out at once again
    assert sent(runner)[-1] == "after"


def test_a_stalled_script_still_shows_what_it_wrote_after_the_window(run) -> None:
    runner, ctx = run
    with coalesced(window_s=0.05):
        write(ctx, "progress 0 %")
        time.sleep(0.5)  # a long computation that writes nothing
        assert sent(runner) == ["progress 0 %"]
        write(ctx, "progress 100 %")
    assert sent(runner) == ["progress 0 %", "progress 100 %"]


def test_each_message_is_still_a_point_where_the_script_can_be_stopped(run) -> None:
    runner, ctx = run
    runner.stop_at_check = 3  # Streamlit raises at the third element: the user pressed Run again
    with pytest.raises(InterruptedError), coalesced(window_s=5):
        write(ctx, "a", "b", "c", "d")
    assert sent(runner) == ["a", "b"]  # written before the request: handed over, as Streamlit would have sent them
    assert runner.checks == 3  # and not offered to the check again (it would raise again and drop them)


def test_what_was_written_before_st_stop_is_shown(run) -> None:
    runner, ctx = run
    runner.stop_at_check = None
    with pytest.raises(InterruptedError), coalesced(window_s=5):
        write(ctx, "error message")
        runner.stop_at_check = runner.checks + 1  # st.stop(): requests a stop, then writes an empty element
        write(ctx, "empty")
    assert sent(runner) == ["error message"]


def test_messages_from_another_thread_of_the_run_are_held_too_and_not_checked(run) -> None:
    runner, ctx = run
    with coalesced(window_s=5):
        write(ctx, "running")
        spinner = threading.Thread(target=write, args=(ctx, "spinner"))  # st.spinner's timer thread
        spinner.start()
        spinner.join()
        assert sent(runner) == []
    assert sent(runner) == ["running", "spinner"]
    assert runner.checks == 1  # the script thread's message, when written


def test_nested_blocks_and_code_outside_a_script_run_are_left_alone(run, monkeypatch: pytest.MonkeyPatch) -> None:
    runner, ctx = run
    with coalesced(window_s=5):
        held = ctx._enqueue
        with coalesced(window_s=5):
            assert ctx._enqueue == held
            write(ctx, "inner")
        assert sent(runner) == []
    assert sent(runner) == ["inner"]
    monkeypatch.setattr(coalesce, "get_script_run_ctx", lambda suppress_warning=False: None)
    with coalesced():
        pass


def test_in_a_real_streamlit_run_the_block_holds_messages_and_keeps_streamlits_stop_check() -> None:
    """Guards the two Streamlit internals the module relies on (the context's ``_enqueue`` and the runner's check):
    if an upgrade renames them, :func:`coalesced` would silently do nothing."""
    from streamlit.testing.v1 import AppTest

    def script() -> None:
        import streamlit as st
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        from attnviz.coalesce import coalesced

        with coalesced():
            held = get_script_run_ctx()._enqueue.__self__
            st.text(f"{type(held).__name__} check={held.check is not None}")
            st.text("second")

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert [t.value for t in at.text] == ["_Held check=True", "second"]
