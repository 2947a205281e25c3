# The test command the README and CI use.
.PHONY: test build dev
test:
	./scripts/test.sh

# Builds the one-binary CLI and every service binary into ./bin.
build:
	mkdir -p bin
	cd cmd/tributary && go build -o ../../bin/tributary .
	cd services/ingest && go build -o ../../bin/ingest ./cmd/ingest
