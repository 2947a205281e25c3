package main

import (
	"context"
	"strings"
	"testing"
)

func TestRunRejectsBadConfiguration(t *testing.T) {
	env := map[string]string{"TRIBUTARY_API_KEYS": "k-test-1234:acme:", "TRIBUTARY_KAFKA_BROKERS": "127.0.0.1:1"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no keys", nil, map[string]string{"TRIBUTARY_API_KEYS": ""}, "TRIBUTARY_API_KEYS"},
		{"replica id", []string{"--replica-id", "a b"}, nil, "TRIBUTARY_REPLICA_ID"},
		{"message size", []string{"--max-message-bytes", "10"}, nil, "TRIBUTARY_MAX_MESSAGE_BYTES"},
		{"in flight", nil, map[string]string{"TRIBUTARY_MAX_IN_FLIGHT": "0"}, "TRIBUTARY_MAX_IN_FLIGHT"},
		{"pong wait", []string{"--pong-wait", "10ms"}, nil, "TRIBUTARY_PONG_WAIT"},
		{"answer timeout", []string{"--answer-timeout", "-1s"}, nil, "TRIBUTARY_ANSWER_TIMEOUT"},
		{"bad duration", nil, map[string]string{"TRIBUTARY_WRITE_WAIT": "soon"}, "TRIBUTARY_WRITE_WAIT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if v, ok := tt.env[k]; ok {
					return v
				}
				return env[k]
			}
			var stderr strings.Builder
			err := run(context.Background(), tt.args, getenv, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%v) = %v, want an error naming %s", tt.args, err, tt.want)
			}
		})
	}
}
