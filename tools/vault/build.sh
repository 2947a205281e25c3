#!/usr/bin/env bash
# Builds the Vault v1.14.8 server (the last MPL-2.0 release) from the Go module proxy and
# caches the binary by version and recipe hash, so a machine builds it once. Prints the
# binary's path on stdout; everything else goes to stderr.
#
# Why a build: no Vault binary or image is downloadable here, and `go install` of the
# module fails on its replace directives; its zip also lacks the nested api/sdk modules.
# sdk v0.11.0 has every symbol the 1.14.8 tree needs but changed a few interfaces, hence
# the two patches (adapters for SendEvent and four system-view methods; a start-up panic
# check the 1.14 in-tree sdk did not have). vault.go.mod/vault.go.sum are Vault's with the
# replaces dropped and sdk => ./sdk-local.
#
# Cost on 2 cores: cold about 4 min of module downloads (about 5 GB) and 17 min of
# compiling; with a warm module and build cache about 1 min; cached binary: instant.
# Usage: build.sh [--cached]   (--cached: print the cached binary or exit 3; never build)
# Environment:
#   TRIBUTARY_CACHE_DIR  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/tributary)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VERSION=1.14.8
SDK=v0.11.0
# The cache key covers what changes the binary: the patches and the module graph.
RECIPE=$( (echo "$VERSION $SDK"; cat "$HERE"/*.patch "$HERE"/vault.go.mod "$HERE"/vault.go.sum) | sha256sum | cut -c1-12)
CACHE=${TRIBUTARY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tributary}/vault/$VERSION-$RECIPE
BIN=$CACHE/vault
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
if [ "${1:-}" = "--cached" ]; then exit 3; fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # concurrent test packages wait for one build
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

start=$(date +%s)
echo "vault: building $VERSION (cold: about 20 min on 2 cores) into $CACHE" >&2
export GOWORK=off GOFLAGS="-buildvcs=false" CGO_ENABLED=0
modcache=$(go env GOMODCACHE)
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
(cd "$tmp" && go mod download github.com/hashicorp/vault@v$VERSION github.com/hashicorp/vault/sdk@$SDK) >&2
src=$tmp/src
cp -r "$modcache/github.com/hashicorp/vault@v$VERSION" "$src"
cp -r "$modcache/github.com/hashicorp/vault/sdk@$SDK" "$src/sdk-local"
chmod -R u+w "$src"
(cd "$src" && patch -s -p1 <"$HERE/vault-1.14.8-sdk0.11.patch" && patch -s -p1 <"$HERE/sdk-0.11.0-no-existence-panic.patch")
cp "$HERE/vault.go.mod" "$src/go.mod"
cp "$HERE/vault.go.sum" "$src/go.sum"
# No bare `go mod download` here: it rewrites requirements; go build fetches what it needs.
(cd "$src" && go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" .) >&2
mv "$BIN.tmp" "$BIN"
echo "vault: built in $(($(date +%s) - start)) s" >&2
echo "$BIN"
