package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/services/audit"
)

func TestRunRejectsBadConfig(t *testing.T) {
	base := map[string]string{
		"TRIBUTARY_KAFKA_BROKERS": "localhost:9092",
		"TRIBUTARY_DATA_DIR":      t.TempDir(),
		"TRIBUTARY_API_KEYS":      "k-compliance-1:acme:compliance",
	}
	daemontest.RejectsConfig(t, run, base, []daemontest.BadConfig{
		{Name: "segment size", Env: map[string]string{"TRIBUTARY_AUDIT_SEGMENT_BYTES": "10"}, Want: []string{"TRIBUTARY_AUDIT_SEGMENT_BYTES"}},
		{Name: "batch", Args: []string{"--audit-max-batch", "0"}, Want: []string{"TRIBUTARY_AUDIT_MAX_BATCH"}},
		{Name: "no data dir", Env: map[string]string{"TRIBUTARY_DATA_DIR": ""}, Want: []string{"TRIBUTARY_DATA_DIR"}},
		{Name: "replication", Env: map[string]string{"TRIBUTARY_TOPIC_REPLICATION": "0"}, Want: []string{"TRIBUTARY_TOPIC_REPLICATION"}},
	})
}

// TestRunEndToEnd runs the whole service against a broker: events go in
// over Kafka and come out of the export; the log verifies after a stop.
func TestRunEndToEnd(t *testing.T) {
	cluster := kafkatest.Start(t)
	prefix := cluster.Prefix(t)
	dir := t.TempDir()
	addr := daemontest.FreeAddr(t)
	svc := daemontest.Start(t, run, map[string]string{
		"TRIBUTARY_KAFKA_BROKERS": strings.Join(cluster.Brokers(), ","),
		"TRIBUTARY_TOPIC_PREFIX":  prefix,
		"TRIBUTARY_DATA_DIR":      dir,
		"TRIBUTARY_HTTP_ADDR":     addr,
		"TRIBUTARY_API_KEYS":      "k-compliance-1:acme:compliance,k-user-0001:acme:staff",
		"TRIBUTARY_LOG_LEVEL":     "error",
	})
	defer func() {
		svc.Stop(t, 30*time.Second)
		rep, err := audit.Verify(context.Background(), dir, mustKeys(t, filepath.Join(dir, "audit.key")))
		// The 3 events plus the service's own: one admin_action per export.
		if err != nil || rep.Records < 4 || !rep.Sealed {
			t.Errorf("Verify after stop = %+v, %v; want the 3 events and the exports' admin actions, sealed", rep, err)
		}
	}()

	topics := events.NewTopics(prefix)
	var msgs []kafka.Message
	for i, tc := range []struct{ topic, typ, tenant string }{
		{topics.QueriesReceived, events.TypeQueryReceived, "acme"},
		{topics.QueriesReceived, events.TypeQueryReceived, "globex"},
		{topics.AuditEvents, events.AuditTypePrefix + events.AuditKindPolicyDecision, "acme"},
	} {
		env := events.Envelope{ID: fmt.Sprint("e", i), Source: "test", Type: tc.typ, Time: time.Now().UTC(), TenantID: tc.tenant}
		msgs = append(msgs, kafka.Message{Topic: tc.topic, Key: []byte(fmt.Sprint("r", i)), Headers: env.Headers(),
			Value: []byte(fmt.Sprintf(`{"request_id":"r%d","tenant_id":%q}`, i, tc.tenant))})
	}
	// The service creates the topics at start; wait for them, then produce.
	svc.WaitReady(t, addr, 30*time.Second)
	cluster.Produce(t, msgs...)

	get := func(key string) (int, []string) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/audit/export", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var lines []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			// Leave out the service's own admin_action events (each
			// export is one).
			if !strings.Contains(sc.Text(), `"ce_source":"tributary/audit"`) {
				lines = append(lines, sc.Text())
			}
		}
		return resp.StatusCode, lines
	}
	svc.WaitFor(t, "2 export lines", 30*time.Second, func() bool { _, lines := get("k-compliance-1"); return len(lines) == 2 })
	_, lines := get("k-compliance-1")
	for _, l := range lines {
		if !strings.Contains(l, `"tenant":"acme"`) {
			t.Errorf("export line of another tenant: %s", l)
		}
	}
	if status, _ := get("k-user-0001"); status != http.StatusForbidden {
		t.Errorf("export with a staff key = %d, want 403", status)
	}
}

func mustKeys(t *testing.T, path string) audit.KeyProvider {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("key file not created: %v", err)
	}
	k, err := audit.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
