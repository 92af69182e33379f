.PHONY: run test services bench lint audit
# Run the whole platform locally on the embedded defaults (installs what it needs).
run:
	bash scripts/bootstrap.sh && .venv/bin/voicectl run
# Run every test against real servers (installs what it needs).
test:
	bash scripts/test.sh
services:
	bash scripts/bootstrap.sh && .venv/bin/voicectl services up
lint:
	.venv/bin/ruff check . && .venv/bin/mypy
audit:
	bash scripts/audit.sh
