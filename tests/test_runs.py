"""attnviz.web.runs: at most two model runs at once, and a model failing on an input is a message on the pages,
which then recover."""
from __future__ import annotations

import numpy as np
import pytest

from attnviz.web import runs
from tests.apptest import page
from tests.shown import plain


def test_at_most_two_model_runs_at_once():
    import threading
    import time

    from attnviz.web import runs

    active, peak, lock = [0], [0], threading.Lock()

    def work() -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1

    threads = [threading.Thread(target=runs.limited, args=(work,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == runs.MODEL_RUN_SLOTS == 2


@pytest.mark.parametrize(("page_file", "model", "key"), [("1_Text.py", "minilm", "text_model"),
                                                          ("2_Image.py", "dinov2-small", "image_model")])
def test_a_model_failing_on_an_input_is_a_message_and_the_page_recovers(monkeypatch, page_file, model, key):
    shared = runs.get_model(model)

    def out_of_memory(**_: object) -> None:
        raise RuntimeError("DefaultCPUAllocator: not enough memory")

    runs.RESULTS.clear()
    monkeypatch.setattr(shared, "run", out_of_memory)  # the shared instance, as every session sees it
    at = page(page_file).run()
    assert not at.exception
    [error] = [plain(e.value) for e in at.error]
    assert "The model failed on this input: DefaultCPUAllocator: not enough memory" in error
    monkeypatch.undo()
    at.run()
    assert not at.exception and not at.error
    assert at.selectbox(key=key).value == model and at.get("image")


def test_pages_open_registered_names_only(local_models, text_dir):
    """What a page runs comes from a browser: a directory's path, or a link out of the models folder, is refused
    even though the Python API opens directories; a folder of the models folder opens by its name."""
    for name in (str(text_dir("bert")), str(local_models / "my-bert"), "linked-out", "../models/my-bert"):
        with pytest.raises(runs.ModelLoadError, match="could not be loaded"):
            runs.get_model(name)
    assert runs.get_model("my-bert").name == "my-bert"


def test_with_a_ray_address_the_pages_run_models_on_ray(ray_local, minilm, monkeypatch):
    """ATTNVIZ_RAY_ADDRESS set: the Text page's runs go to the model's actor pool (this process's own MiniLM is made
    to fail, and the page still shows the run, with the same numbers); unset: the model in this process again."""
    from attnviz.remote import RemoteModel, shutdown_pool
    from tests.text_app import text_page

    def not_here(**_: object) -> None:
        raise AssertionError("ran in the server's process")

    monkeypatch.setenv(runs.RAY_ADDRESS_ENV, "auto")  # Ray is connected in this process already: that Ray is used
    monkeypatch.setattr(runs, "_REMOTE", {})
    monkeypatch.setattr(minilm, "run", not_here)  # the registry's shared instance
    runs.RESULTS.clear()
    text = "Cats chase mice, and dogs chase cats."
    try:
        remote = runs.get_model("minilm")
        assert isinstance(remote, RemoteModel) and runs.get_model("minilm") is remote
        at = text_page(text=text, text_layer="L2", text_head="H3").run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert "11 tokens" in "\n".join(c.value for c in at.caption)
        got = runs.TextRun("minilm", text).result()  # cached by the page's run
        monkeypatch.undo()
        want = minilm.run(text=text)
        assert got.tokens == want.tokens
        np.testing.assert_allclose(got.weights, want.weights, rtol=0, atol=1e-5)  # 1 torch thread there, 2 here
        assert runs.get_model("minilm") is minilm  # no address: the model in this process
    finally:
        runs.RESULTS.clear()
        shutdown_pool("minilm", 1)


def test_with_a_ray_address_pages_take_registered_names_only(ray_local, local_models, text_dir, monkeypatch):
    """On Ray too, a path or a link out of the models folder is refused (before any actor starts), and a folder of
    the local models folder runs on an actor, which is given this server's ATTNVIZ_MODELS_DIR to find it."""
    from attnviz.remote import RemoteModel, shutdown_pool

    monkeypatch.setenv(runs.RAY_ADDRESS_ENV, "auto")
    monkeypatch.setattr(runs, "_REMOTE", {})
    for name in (str(text_dir("bert")), "linked-out", "../models/my-bert"):
        with pytest.raises(runs.ModelLoadError, match="could not be loaded"):
            runs.get_model(name)
    assert runs._REMOTE == {}
    try:
        model = runs.get_model("my-bert")
        assert isinstance(model, RemoteModel)
        want = runs.load_model("my-bert").run(text="Hello there, world.")
        got = model.run(text="Hello there, world.")
        assert got.tokens == want.tokens
        np.testing.assert_allclose(got.weights, want.weights, rtol=0, atol=1e-5)
    finally:
        shutdown_pool("my-bert", 1)


def test_explanations_load_their_model_here_when_runs_go_to_a_cluster(monkeypatch, minilm):
    """With a Ray address the pages' models are proxies without internals; relevance, ALTI, faithfulness and
    generation take the model loaded in this process instead (a registered name only)."""
    from attnviz.web import explain

    monkeypatch.setenv(runs.RAY_ADDRESS_ENV, "ray://nowhere:10001")
    monkeypatch.setattr(runs, "obtain", lambda name: object())  # what a proxy offers of the model's internals
    assert runs.get_local_model("minilm") is minilm
    assert explain.text_ids(runs.TextRun("minilm", "Cats sleep.")) == minilm.tokenizer("Cats sleep.")["input_ids"]
    with pytest.raises(runs.ModelLoadError, match="could not be loaded"):
        runs.get_local_model("/etc")  # never a path


def test_progress_shows_only_for_a_run_past_a_second_then_paced():
    """A sub-second run shows no bar; a longer one updates it at most every PROGRESS_EVERY_S, and its last layer."""
    from attnviz.web.runs import PROGRESS_AFTER_S, PROGRESS_EVERY_S, Pacing

    now = [0.0]
    due = Pacing(clock=lambda: now[0])
    now[0] = PROGRESS_AFTER_S / 2
    assert not due(1, 30) and not due(30, 30)  # a quick run: nothing, not even its last layer
    now[0] = PROGRESS_AFTER_S
    assert due(2, 30)
    now[0] += PROGRESS_EVERY_S / 2
    assert not due(3, 30) and due(30, 30)  # too soon for a middle layer; the last one always
    now[0] += PROGRESS_EVERY_S
    assert due(4, 30)


def test_the_warm_up_gives_the_heap_a_load_left_free_back(monkeypatch):
    """Each model the warm-up loads is a burst of its own: once loaded, the free heap goes back to the OS."""
    import threading

    from attnviz.server import allocator

    events = []
    monkeypatch.setattr(runs, "obtain", lambda name: events.append(("load", name)))
    monkeypatch.setattr(allocator, "release_free_heap", lambda: events.append(("release",)))
    monkeypatch.setattr(runs, "_WARMED", set())
    started = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self) or self.run())
    runs.warm_up("model-a", "model-b")
    assert len(started) == 1
    assert events == [("load", "model-a"), ("release",), ("load", "model-b"), ("release",)]
