module github.com/tributary-rag/tributary/services/edge

go 1.26.0

require github.com/tributary-rag/tributary/pkg v0.0.0

require github.com/gorilla/websocket v1.5.3 // indirect

replace github.com/tributary-rag/tributary/pkg => ../../pkg
