PYTHON ?= python

.PHONY: bench bench-quick

# The performance harness: prints the table, writes benchmarks/results/latest.{json,md}.
bench:
	$(PYTHON) -m benchmarks

bench-quick:
	$(PYTHON) -m benchmarks --quick
