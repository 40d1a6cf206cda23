"""Head statistics over a whole corpus, computed on Ray Data (a local Ray by default, or any Ray cluster).

``python -m attnviz corpus --model minilm --input FILE --out DIR`` reads texts, runs the model on them in a pool
of Ray actors and reduces, per ``[layer, head]`` and statistic of :data:`attnviz.analysis.stats.STATS`, the mean,
standard deviation, extremes, a histogram and the top texts. One job per module:

- :mod:`~attnviz.corpus.inputs`: read ``.txt``, ``.jsonl`` or ``.parquet`` into ids and texts, and hash the file.
- :mod:`~attnviz.corpus.plan`: cut the corpus into shards (the unit of resuming) and batches of similar length.
- :mod:`~attnviz.corpus.batch`: the batched forward and a batch's summary (the one place that runs the model).
- :mod:`~attnviz.corpus.per_text`: the statistics of texts of one length at once, and the token positions that made
  them (numpy).
- :mod:`~attnviz.corpus.reduce`: the exact, mergeable per-head summary (numpy).
- :mod:`~attnviz.corpus.worker`: the Ray actor (one loaded model per actor, one summary per batch).
- :mod:`~attnviz.corpus.store`: parts, manifest and results on disk (Parquet + JSON), and reading them back.
- :mod:`~attnviz.corpus.pipeline`: the run itself: Ray, the dataset, progress, resuming.
- :mod:`~attnviz.corpus.cli`: the ``corpus`` subcommand.

Importing this package imports neither Ray nor torch; :mod:`~attnviz.corpus.pipeline` imports Ray when it runs.
"""
