"""Launch helpers for the servers that ``benchmarks/runtime_bench.py`` measures."""
