module github.com/tributary-rag/tributary/services/audit

go 1.26.0

require (
	github.com/segmentio/kafka-go v0.4.51
	github.com/tributary-rag/tributary/pkg v0.0.0
)

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3 // indirect
	golang.org/x/text v0.44.0 // indirect
)

replace github.com/tributary-rag/tributary/pkg => ../../pkg
