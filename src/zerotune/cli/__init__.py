"""The `zerotune` command: a table of subcommands, each a thin call into the Python API.

``main`` holds the table; one module per command family (``train``, ``generate``, ``catalog``,
``finetune``, ``track``, ``export``, ``serve``, ``scratch``) registers its parsers; ``common``
holds what they share (run flags, error handling, ``python -m zerotune.<command>``). Imports go
one way: ``main`` -> command modules -> ``common`` and the API packages.
"""
