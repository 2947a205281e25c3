# The test command the README and CI use.
.PHONY: test build dev images up down
test:
	./scripts/test.sh

# Builds the one-binary CLI and every service binary into ./bin.
build:
	mkdir -p bin
	cd cmd/tributary && go build -o ../../bin/tributary .
	cd services/ingest && go build -o ../../bin/ingest ./cmd/ingest

# FROM scratch images of the CLI and every service, tagged
# tributary/<name>:$(VERSION) and :latest (deploy/images.sh).
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# VAULT=1 adds the Vault server image of compose.vault.yaml.
images:
	$(if $(VAULT),IMAGES="tributary audit edge embed generate ingest moderate retrieve vault") ./deploy/images.sh $(VERSION)

# The Compose stack (deploy/compose) under project PROJECT, with its own
# Kafka credentials in deploy/compose/secrets/PROJECT. Needs
# TRIBUTARY_API_KEYS; `make down` keeps the volumes (DOWN_FLAGS=-v drops them).
# VAULT=1 adds a dev-mode Vault for the audit log (compose.vault.yaml).
PROJECT ?= tributary
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo docker compose || echo docker-compose)
COMPOSE_RUN = TRIBUTARY_SECRETS=./secrets/$(PROJECT) TRIBUTARY_IMAGE_TAG=$(VERSION) $(COMPOSE) -p $(PROJECT) -f deploy/compose/compose.yaml $(if $(VAULT),-f deploy/compose/compose.vault.yaml)
up: images
	./deploy/compose/secrets.sh deploy/compose/secrets/$(PROJECT)
	$(COMPOSE_RUN) up -d
	@echo "ingest, edge, audit on 127.0.0.1:$${TRIBUTARY_INGEST_PORT:-8081}, $${TRIBUTARY_EDGE_PORT:-8082}, $${TRIBUTARY_AUDIT_PORT:-8083}; \`$(COMPOSE) -p $(PROJECT) -f deploy/compose/compose.yaml ps\` shows health"
down:
	TRIBUTARY_API_KEYS=$${TRIBUTARY_API_KEYS:-unused} $(COMPOSE_RUN) down $(DOWN_FLAGS)
