# File-storage Vault for tests: initialise and unseal it after start.
storage "file" {
  path = "/vault/data"
}
listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true
}
disable_mlock = true
api_addr      = "http://127.0.0.1:8200"
