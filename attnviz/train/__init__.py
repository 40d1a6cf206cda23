"""Reproducible training of the small models attnviz ships (``python -m attnviz.train.vit_fashion``, ``.shapes``)."""
