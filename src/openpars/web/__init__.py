"""The HTTP edge: the FastAPI application, its dependencies and error rendering."""
