"""``lluminary`` subcommands, one module each: ``HELP``, ``add_arguments(parser)`` and ``async run(args)``."""
