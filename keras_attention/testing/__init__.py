"""Checking attention on any backend: an independent float64 numpy
reference of the layers (`numpy_reference`), used by the test suite and by
`benchmarks/backend_check.py`."""
