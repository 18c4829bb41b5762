# The two commands: `make run` (Switchboard with embedded PostgreSQL and the demo tenant) and
# `make test` (the whole test suite). Both install what they need on a fresh machine.
.PHONY: run test setup

run: setup
	SQLX_OFFLINE=true cargo run --release --locked --bin switchboard -- serve

test:
	scripts/test.sh

setup:
	scripts/setup.sh
