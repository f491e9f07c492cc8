"""openpars: real-time arrest reporting with governed, audited data sharing."""

__version__ = "0.1.0"
