package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
)

func TestRunRejectsBadConfiguration(t *testing.T) {
	base := map[string]string{"TRIBUTARY_API_KEYS": "k-test-1234:acme:", "TRIBUTARY_KAFKA_BROKERS": "127.0.0.1:1"}
	daemontest.RejectsConfig(t, run, base, []daemontest.BadConfig{
		{Name: "no keys", Env: map[string]string{"TRIBUTARY_API_KEYS": ""}, Want: []string{"TRIBUTARY_API_KEYS"}},
		{Name: "replica id", Args: []string{"--replica-id", "a b"}, Want: []string{"TRIBUTARY_REPLICA_ID"}},
		{Name: "message size", Args: []string{"--max-message-bytes", "10"}, Want: []string{"TRIBUTARY_MAX_MESSAGE_BYTES"}},
		{Name: "in flight", Env: map[string]string{"TRIBUTARY_MAX_IN_FLIGHT": "0"}, Want: []string{"TRIBUTARY_MAX_IN_FLIGHT"}},
		{Name: "pong wait", Args: []string{"--pong-wait", "10ms"}, Want: []string{"TRIBUTARY_PONG_WAIT"}},
		{Name: "answer timeout", Args: []string{"--answer-timeout", "-1s"}, Want: []string{"TRIBUTARY_ANSWER_TIMEOUT"}},
		{Name: "bad duration", Env: map[string]string{"TRIBUTARY_WRITE_WAIT": "soon"}, Want: []string{"TRIBUTARY_WRITE_WAIT"}},
	})
}

// TestRunServes starts the edge against a broker, waits until /readyz
// (topics and both consumer groups) reports ready, and stops it.
func TestRunServes(t *testing.T) {
	cluster := kafkatest.Start(t)
	addr := daemontest.FreeAddr(t)
	svc := daemontest.Start(t, run, map[string]string{
		"TRIBUTARY_KAFKA_BROKERS": strings.Join(cluster.Brokers(), ","),
		"TRIBUTARY_TOPIC_PREFIX":  cluster.Prefix(t),
		"TRIBUTARY_HTTP_ADDR":     addr,
		"TRIBUTARY_API_KEYS":      "k-test-1234:acme:",
		"TRIBUTARY_REPLICA_ID":    cluster.Name(t, "edge"),
	})
	svc.WaitReady(t, addr, 60*time.Second)
	svc.Stop(t, 30*time.Second)
	daemontest.CheckLogs(t, svc.Logs.String(), "edge")
	if strings.Contains(svc.Logs.String(), "k-test-1234") {
		t.Error("the API key appears in the logs")
	}
}
