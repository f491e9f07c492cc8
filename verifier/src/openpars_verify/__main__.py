"""Run the verifier as ``python -m openpars_verify``."""

from openpars_verify.cli import main

raise SystemExit(main())
