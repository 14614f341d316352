"""Generators of the small, deterministic sample datasets shipped in the repository's ``data/``.

Run ``python -m engine.data.samples`` from the repository root to regenerate ``data/*.json``
and ``data/dataset_info.json``, or ``python -m engine.data.samples OUT_DIR`` to write them into
another folder. Pure standard library, one fixed seed: every run writes byte-for-byte identical
files, so the shipped data can always be regenerated and reviewed as code instead of as opaque
JSON. The SQL datasets come from ``sql`` (with ``sql_schema``, ``sql_templates`` and
``sql_joins``), the helpfulness preferences from ``helpful`` (with the hand-written
``helpful_facts``), and the registry and the writing from ``__main__``. Every SQL query (and
request text) appears in exactly one split, so evaluation requests never occur in a training file.
"""
