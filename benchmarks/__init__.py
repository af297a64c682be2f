"""Benchmarks: ``python -m benchmarks`` runs every module here (see ``__main__``)."""
