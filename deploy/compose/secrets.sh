#!/bin/sh
# Generates the Kafka credentials of a Compose stack into DIR (default:
# deploy/compose/secrets): `users` for `tributary broker --users` (admin
# and one principal per service, each with a random password) and
# <service>.password, the one secret each service container is given; and
# qdrant.env, the vector store's API key for the store and retrieve; for
# compose.vault.yaml, vault.env (the dev Vault's root token) and
# vault-secret-id (the audit's AppRole secret id). Files
# that exist are kept, so a stack restarts with its own credentials.
#
#   deploy/compose/secrets.sh [DIR]
set -eu

dir=${1:-$(dirname "$0")/secrets}
umask 077
mkdir -p "$dir"
if [ ! -f "$dir/qdrant.env" ]; then
	# Read by Compose on the host (env_file), not mounted: owner-only.
	echo "TRIBUTARY_QDRANT_API_KEY=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')" >"$dir/qdrant.env.tmp"
	mv "$dir/qdrant.env.tmp" "$dir/qdrant.env"
fi
if [ ! -f "$dir/vault.env" ]; then
	# compose.vault.yaml: the dev Vault's root token (host only, like
	# qdrant.env) and the audit's AppRole secret id (mounted; no newline:
	# the vault CLI's secret_id=@file takes the file's bytes as they are).
	tok=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
	printf '%s' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')" >"$dir/vault-secret-id"
	chmod 0644 "$dir/vault-secret-id"
	printf 'VAULT_DEV_ROOT_TOKEN_ID=%s\nVAULT_TOKEN=%s\n' "$tok" "$tok" >"$dir/vault.env.tmp"
	mv "$dir/vault.env.tmp" "$dir/vault.env"
fi
if [ -f "$dir/users" ]; then
	exit 0
fi
tmp=$dir/users.tmp
: >"$tmp"
echo "# Kafka principals of tributary broker: name:password (admin is the superuser)." >>"$tmp"
for name in admin audit edge embed generate ingest moderate retrieve; do
	pass=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
	echo "$name:$pass" >>"$tmp"
	if [ "$name" != admin ]; then
		printf '%s\n' "$pass" >"$dir/$name.password"
	fi
done
mv "$tmp" "$dir/users"
# The containers run as nobody (65534) and read the files through bind
# mounts; the directory itself stays private to its owner.
chmod 0644 "$dir"/users "$dir"/*.password
chmod 0700 "$dir"
