#!/bin/sh
# Builds the FROM scratch image of the tributary CLI and of every service
# from static binaries, the way pkg/containertest does for tests: each
# binary is built on the host (CGO_ENABLED=0, -trimpath) into a build
# context holding the binary under its name and an empty data/ directory,
# and packed with the repository's Dockerfile for it. No base image is
# pulled.
#
#   deploy/images.sh [VERSION]
#
# Tags tributary/<name>:VERSION (default: git describe --always --dirty)
# and tributary/<name>:latest. IMAGES (space-separated) limits the set;
# "vault" (not in the default set) packs the Vault server of
# compose.vault.yaml from TRIBUTARY_VAULT_BIN or tools/vault/build.sh.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=${1:-$(git describe --always --dirty 2>/dev/null || echo dev)}
images=${IMAGES:-"tributary audit edge embed generate ingest moderate retrieve"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for name in $images; do
	case $name in
	tributary) pkg=./cmd/tributary dockerfile=cmd/tributary/Dockerfile ;;
	audit | edge | embed | generate | ingest | moderate | retrieve)
		pkg=./services/$name/cmd/$name dockerfile=services/$name/Dockerfile ;;
	vault) pkg= dockerfile=tools/vault/Dockerfile ;;
	*) echo "images: unknown image $name" >&2; exit 2 ;;
	esac
	ctx=$tmp/$name
	mkdir -p "$ctx/data"
	if [ -n "$pkg" ]; then
		CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -buildid=" -o "$ctx/$name" "$pkg"
	else
		# The Vault server is built once and cached (cold: about 20 min).
		cp "${TRIBUTARY_VAULT_BIN:-$(tools/vault/build.sh)}" "$ctx/vault"
		cp tools/vault/config.hcl "$ctx/"
	fi
	# The legacy builder warns on stderr on every build: show its output
	# only when the build fails.
	if ! docker build --quiet -f "$dockerfile" -t "tributary/$name:$version" -t "tributary/$name:latest" "$ctx" >"$tmp/build.log" 2>&1; then
		cat "$tmp/build.log" >&2
		exit 1
	fi
	echo "tributary/$name:$version"
done
