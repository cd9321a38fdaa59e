PYTHON ?= python

.PHONY: report
# every report preset in order, the test evaluation, then report/report.md; `make report ARGS="data=..."`
report:
	PYTHON=$(PYTHON) bash scripts/report.sh $(ARGS)
