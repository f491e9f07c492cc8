"""openpars-verify: check an openpars audit log without trusting the operator's code."""

__version__ = "0.1.0"
