module github.com/tributary-rag/tributary/cmd/tributary

go 1.26.0

require (
	github.com/tributary-rag/tributary/pkg v0.0.0
	github.com/tributary-rag/tributary/services/ingest v0.0.0
)

replace (
	github.com/tributary-rag/tributary/pkg => ../../pkg
	github.com/tributary-rag/tributary/services/ingest => ../../services/ingest
)
