"""One module per subcommand: ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``
(see :mod:`gennape.cli`); shared options in :mod:`gennape.commands._options`."""
