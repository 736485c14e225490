"""Built-in vectors, suites and baselines, shipped as package data.

The files live once, at the top of the source tree (``vectors/``, ``baselines/``), and are
mapped here by ``[tool.setuptools.package-dir]``; read them through
:func:`harness.project.builtin_dir`, never through a path computed from ``__file__``.
"""
