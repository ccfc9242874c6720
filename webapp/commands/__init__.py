"""One module per ``face-studio`` sub-command: ``HELP``, ``add_arguments(parser)``, ``run(args)``."""
