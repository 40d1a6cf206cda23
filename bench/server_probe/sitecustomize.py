"""Server-side timing for ``bench/load.py``, and a slow server for ``bench/browser_cost.py`` (on the benchmark
server's ``PYTHONPATH`` only; inert elsewhere).

When ``ATTNVIZ_BENCH_RUNLOG`` names a file, every session's script runs are timed from the moment the server
receives the browser's rerun request (a click, an upload, a page switch) to the moment it hands the run's last
message to the event loop for sending, and one JSON line is written per finished run:
``{"t": end, "session": id, "page": name, "seconds": duration, "reruns": n, "sends": k, "messages": m}``
(``reruns``: requests folded into this run; ``sends``: the event loop's flushes that carried this session's messages
while the run lasted, each of which the browser renders on its own; ``messages``: how many they carried). This is the
server's share of an action's latency, free of the simulated browsers' own CPU time.

When ``ATTNVIZ_BENCH_DELAY_MS`` is set, a script run waits that long before handing over each element (each
``delta`` message), so its messages reach the browser one by one, as they do from a loaded server.

``ATTNVIZ_BENCH_MEMLOG`` starts :mod:`memprobe`. ``ATTNVIZ_BENCH_MEMRAY`` names a file for memray (``pip install
memray``; not a dependency of attnviz) to record every allocation of the server into; read what was live at the
high-water mark with ``memray.FileReader(file).get_high_watermark_allocation_records(merge_threads=True)``.
"""
import os

_LOG = os.environ.get("ATTNVIZ_BENCH_RUNLOG")
if _LOG:
    import json
    import threading
    import time

    from streamlit.runtime import app_session
    from streamlit.runtime.scriptrunner import ScriptRunnerEvent

    _lock = threading.Lock()
    _out = open(_LOG, "a", buffering=1)
    _pending: dict[str, tuple[float, str, int]] = {}
    _sends: dict[str, list[int]] = {}  # session -> [flushes, messages] since its run's request
    _DONE = (ScriptRunnerEvent.SCRIPT_STOPPED_WITH_SUCCESS, ScriptRunnerEvent.SCRIPT_STOPPED_WITH_COMPILE_ERROR,
             ScriptRunnerEvent.FRAGMENT_STOPPED_WITH_SUCCESS)  # a fragment's rerun ends with the last one
    _handle_backmsg = app_session.AppSession.handle_backmsg
    _on_event = app_session.AppSession._handle_scriptrunner_event_on_event_loop
    _flush = app_session.AppSession.flush_browser_queue

    _closing: dict[str, dict] = {}  # session -> its finished run's record, written at the flush that ends it

    def flush_browser_queue(self):  # noqa: ANN001, ANN202 - Streamlit's signature
        msgs = _flush(self)
        with _lock:
            if msgs and self.id in _sends:
                _sends[self.id][0] += 1
                _sends[self.id][1] += len(msgs)
            record = _closing.pop(self.id, None)
            if record is not None:
                record["sends"], record["messages"] = _sends.pop(self.id, [0, 0])
                _out.write(json.dumps(record) + "\n")
        return msgs

    def handle_backmsg(self, msg):  # noqa: ANN001 - Streamlit's signature
        if msg.WhichOneof("type") == "rerun_script":
            with _lock:
                t0, page, n = _pending.get(self.id, (time.monotonic(), "", 0))
                _pending[self.id] = (t0, page, n + 1)
                _sends.setdefault(self.id, [0, 0])
        return _handle_backmsg(self, msg)

    def on_event(self, sender, event, forward_msg=None, exception=None, client_state=None,  # noqa: ANN001
                 page_script_hash=None, *args, **kwargs):
        result = _on_event(self, sender, event, forward_msg, exception, client_state, page_script_hash,
                           *args, **kwargs)
        if event == ScriptRunnerEvent.SCRIPT_STARTED and page_script_hash:
            pages = self._pages_manager
            info = pages.get_pages().get(page_script_hash) or {}
            name = info.get("page_name") or ("landing page" if page_script_hash == pages.main_script_hash
                                             else page_script_hash)
            with _lock:
                if self.id in _pending:
                    t0, _, n = _pending[self.id]
                    _pending[self.id] = (t0, name, n)
        elif event in _DONE:
            with _lock:
                started = _pending.pop(self.id, None)
                if started is not None:
                    t0, page, n = started
                    _closing[self.id] = {"t": time.time(), "session": self.id, "page": page,
                                         "seconds": time.monotonic() - t0, "reruns": n}
        return result

    app_session.AppSession.handle_backmsg = handle_backmsg
    app_session.AppSession._handle_scriptrunner_event_on_event_loop = on_event
    app_session.AppSession.flush_browser_queue = flush_browser_queue

_DELAY_S = float(os.environ.get("ATTNVIZ_BENCH_DELAY_MS") or 0) / 1000
if _DELAY_S > 0:
    import threading
    import time

    from streamlit.runtime.scriptrunner import script_runner

    _enqueue = script_runner.ScriptRunner._enqueue_forward_msg

    def enqueue_slowly(self, msg):  # noqa: ANN001 - Streamlit's signature
        if msg.HasField("delta") and threading.current_thread() is not threading.main_thread():
            time.sleep(_DELAY_S)
        return _enqueue(self, msg)

    script_runner.ScriptRunner._enqueue_forward_msg = enqueue_slowly

if os.environ.get("ATTNVIZ_BENCH_MEMLOG"):
    import memprobe

    memprobe.start(os.environ["ATTNVIZ_BENCH_MEMLOG"])

if os.environ.get("ATTNVIZ_BENCH_MEMRAY"):
    import memray

    _memray = memray.Tracker(os.environ["ATTNVIZ_BENCH_MEMRAY"])
    _memray.__enter__()
