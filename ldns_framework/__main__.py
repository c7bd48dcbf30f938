"""``python -m ldns_framework`` is the ``ldns`` command."""

from ldns_framework.cli import main

raise SystemExit(main())
