"""``python -m lluminary`` is the ``lluminary`` command."""

from lluminary.cli import main

raise SystemExit(main())
