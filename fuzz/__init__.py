"""atheris fuzz targets, one per parser; see README.md. A package only so tests can import ``fuzz._harness``."""
