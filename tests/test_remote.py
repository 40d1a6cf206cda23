"""Model runs on Ray actors (:mod:`attnviz.remote`), against the session's local Ray."""
from __future__ import annotations

import numpy as np
import pytest

from attnviz.remote import RemoteModel, actor_name, shutdown_pool


@pytest.fixture(scope="module")
def remote_minilm(ray_local):
    model = RemoteModel("minilm", size=1)
    yield model
    shutdown_pool("minilm", 2)


def test_remote_run_equals_a_local_run(remote_minilm, minilm):
    text = "The cat sat on the mat, and the dog watched."
    got, want = remote_minilm.run(text=text), minilm.run(text=text)
    assert got.tokens == want.tokens and got.model == "minilm" and not got.truncated
    np.testing.assert_allclose(got.weights, want.weights, rtol=0, atol=1e-5)  # 1 torch thread there, 2 here
    assert (remote_minilm.kind, remote_minilm.n_layers, remote_minilm.n_heads) == ("text", 6, 12)
    assert remote_minilm.max_tokens == minilm.max_tokens


def test_bad_input_is_the_models_value_error(remote_minilm, minilm):
    with pytest.raises(ValueError) as remote_error:
        remote_minilm.run(text="   ")
    with pytest.raises(ValueError) as local_error:
        minilm.run(text="   ")
    assert str(remote_error.value) == str(local_error.value)
    with pytest.raises(ValueError, match="no method"):
        remote_minilm.call("_private")


def test_proxies_share_one_named_pool(remote_minilm, ray_local):
    """A second proxy (another server process would do the same) gets the same actor by name."""
    other = RemoteModel("minilm", size=1)
    assert other.actors[0]._actor_id == remote_minilm.actors[0]._actor_id
    assert ray_local.get_actor(actor_name("minilm", 0), namespace="attnviz")._actor_id == other.actors[0]._actor_id
    assert other.run(text="Hello there.").tokens == ["[CLS]", "hello", "there", ".", "[SEP]"]


def test_an_address_where_nothing_answers_is_refused_at_once():
    """Ray would retry for minutes; this is refused before Ray is asked (no Ray started here)."""
    from attnviz.remote import init_cluster
    from tests.browser import free_port

    port = free_port()  # nothing listens there
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(ConnectionError, match="nothing answers there"):
            init_cluster(address)
