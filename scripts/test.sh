#!/usr/bin/env bash
# Runs the whole test suite: format check, vet, race tests in every workspace
# module, the container tests, and a short fuzz pass over every fuzz target.
# Environment:
#   FUZZTIME   per-target fuzz budget (default 2000x executions; 0 skips the fuzz pass).
#              A count, not a duration: Go 1.26 can fail a target with a spurious
#              "context deadline exceeded" when a duration budget expires while a
#              worker is busy (golang/go#75804, fixed in Go 1.27).
#   TRIBUTARY_TEST_KAFKA_BROKERS  run Kafka tests against a real cluster
#   QDRANT_ADDR                   run the Qdrant conformance suite against a real Qdrant
#   TRIBUTARY_CACHE_DIR           where tools/vault/build.sh caches the Vault binary
#   TRIBUTARY_VAULT_BIN           a Vault 1.14.8 server binary to use instead of building one
set -euo pipefail
cd "$(dirname "$0")/.."
export TESTCONTAINERS_RYUK_DISABLED=true
FUZZTIME=${FUZZTIME:-2000x}

step() { printf '\n=== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-ed:"; echo "$unformatted"; exit 1
fi

# The audit tests run a real Vault server, built from the module proxy once per
# machine and cached by version (cold about 20 min on 2 cores; cached: instant).
# A preset TRIBUTARY_VAULT_BIN (a Vault 1.14.8 server binary) skips the build.
step "vault server for the audit tests"
TRIBUTARY_VAULT_BIN=${TRIBUTARY_VAULT_BIN:-$(tools/vault/build.sh)}
export TRIBUTARY_VAULT_BIN

mods=$(go list -m -f '{{.Dir}}')
for dir in $mods; do
  rel=${dir#"$PWD"/}
  step "vet $rel"
  (cd "$dir" && go vet -tags containers ./...)
done

for dir in $mods; do
  rel=${dir#"$PWD"/}
  step "test -race $rel"
  (cd "$dir" && go test -race -count=1 -timeout 20m ./...)
done

step "container tests"
(cd services/ingest && go test -count=1 -tags containers -run Container -timeout 20m ./...)
(cd services/edge && go test -count=1 -tags containers -run Container -timeout 20m ./...)
(cd services/retrieve && go test -count=1 -tags containers -run Container -timeout 20m ./...)
(cd services/embed && go test -count=1 -tags containers -run Container -timeout 20m ./...)
(cd services/generate && go test -count=1 -tags containers -run Container -timeout 20m ./...)
(cd services/audit && go test -count=1 -tags containers -run Container -timeout 20m ./...)
(cd services/moderate && go test -count=1 -tags containers -run Container -timeout 20m ./...)

step "prometheus alert rules (deploy/prometheus)"
promtool check rules deploy/prometheus/alerts.yaml

step "compose stack: end to end and chaos (deploy/compose)"
(cd cmd/tributary && go test -count=1 -tags containers -run ComposeStack -timeout 30m ./composetest)

if [ "$FUZZTIME" != "0" ]; then
  for dir in $mods; do
    (cd "$dir" && go list -f '{{.ImportPath}} {{.Dir}}' ./...) | while read -r pkg pdir; do
      for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$pdir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
        step "fuzz $pkg $target ($FUZZTIME)"
        (cd "$dir" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 200x "$pkg")
      done
    done
  done
fi

step "all tests passed"
