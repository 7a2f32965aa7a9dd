"""The ``gennape`` command line: one console script fronting every package."""
