// Package interop holds tests of Tributary's event contract against other
// parties' official clients: the CloudEvents Go SDK with its Kafka
// (sarama) binding reads the events of every topic and produces ingest
// requests that the services accept. It has no code of its own; it lives
// in the CLI module so that the SDK and sarama stay out of the services'
// and pkg's dependencies.
package interop
