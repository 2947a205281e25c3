# Vault policy of the Tributary audit service (least privilege).
#
# Assumes the transit engine at "transit/" and the default key prefix
# "tributary-audit" (--vault-transit-mount, --vault-key-prefix). Load it with
#   vault policy write tributary-audit deploy/vault/audit-policy.hcl
# and give the service a token, AppRole or Kubernetes role with this policy only.
# Token lookup and renewal come from Vault's built-in "default" policy.

# Make a data key per tenant and segment (the plaintext stays in memory, the
# wrapped copy goes to the segment's key file).
path "transit/datakey/plaintext/tributary-audit-*" {
  capabilities = ["update"]
}

# Unwrap stored data keys for export, verify and start-up.
path "transit/decrypt/tributary-audit-*" {
  capabilities = ["update"]
}

# Rewrap stored data keys to the latest key version (tributary audit rewrap).
path "transit/rewrap/tributary-audit-*" {
  capabilities = ["update"]
}

# Per-tenant keys: create on a tenant's first record (create/update), read
# versions, rotate (keys/NAME/rotate: update), raise min_decryption_version
# (keys/NAME/config: update), and trim old versions for crypto-shredding
# (keys/NAME/trim: update; tributary audit shred, which only compliance-admin
# API keys can ask the service for, each request itself audited). No delete:
# shredding destroys key versions, the key stays for the tenant's new records.
path "transit/keys/tributary-audit-*" {
  capabilities = ["create", "read", "update"]
}

# Enumerate the keys to rotate (names only).
path "transit/keys" {
  capabilities = ["list"]
}
