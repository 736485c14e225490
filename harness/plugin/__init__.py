"""The pytest plugin's parts (its hooks are in :mod:`harness.pytest_plugin`): session state,
collectors and items, the run folder, and the ``harness_check`` fixture.

Layered, lowest first: ``common`` (the session's interfaces); ``check``, ``items``, ``runs``
(each on ``common`` only); ``session`` (on all of them); then the hooks."""
