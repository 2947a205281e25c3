module github.com/tributary-rag/tributary/bench

go 1.26.0

require github.com/tributary-rag/tributary/pkg v0.0.0

replace github.com/tributary-rag/tributary/pkg => ../pkg
