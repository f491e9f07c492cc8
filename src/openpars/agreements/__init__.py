"""Data-sharing agreements as data: versioned documents, scope, site floor, lifecycle."""
