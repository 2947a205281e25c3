//go:build containers

package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/containertest"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/eventually"
)

// TestContainerAudit runs the audit image beside a broker image on one
// Docker network, as the image's unprivileged user with its data directory
// and key file created inside the image's /data. It publishes events of two
// tenants on two topics from the host, then exports with a compliance key
// (only its tenant's records, decrypted), and checks that a key without the
// compliance group gets 403 and no key 401. A restart of the container
// keeps the log and its key.
func TestContainerAudit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	env := containertest.Setup(ctx, t, containertest.BinaryTributary)
	env.AddImage(ctx, t, "audit", containertest.Target{
		Package:    "./services/audit/cmd/audit",
		Dockerfile: "services/audit/Dockerfile",
	})
	broker := env.StartBroker(ctx, t)
	const (
		officerKey = "k-officer-c1"
		staffKey   = "k-staff-c1"
	)
	svc := env.StartService(ctx, t, containertest.Service{
		Binary: "audit",
		Env: map[string]string{
			"TRIBUTARY_KAFKA_BROKERS": broker.Addr,
			"TRIBUTARY_API_KEYS":      officerKey + ":acme:staff|" + GroupCompliance + "," + staffKey + ":acme:staff",
		},
	})

	topics := events.NewTopics("")
	var msgs []kafka.Message
	for i := 0; i < 4; i++ {
		msgs = append(msgs, eventMsg(topics.QueriesReceived, events.TypeQueryReceived, "acme", fmt.Sprintf("req-a%d", i), i))
	}
	msgs = append(msgs,
		eventMsg(topics.AuditEvents, "tributary.audit.auth_failed", "acme", "req-a9", 9),
		eventMsg(topics.QueriesReceived, events.TypeQueryReceived, "globex", "req-g0", 0),
		eventMsg(topics.AuditEvents, "tributary.audit.auth_failed", "globex", "req-g1", 1),
	)
	w := &kafka.Writer{
		Addr:         kafka.TCP(broker.Addr),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		Transport:    &kafka.Transport{Dial: broker.Dialer()},
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
	var wantIDs []string
	for _, m := range msgs[:5] {
		wantIDs = append(wantIDs, headerOf(m, events.HeaderID))
	}
	sort.Strings(wantIDs)

	// The consumer records asynchronously: poll the export until acme's
	// five records are there.
	recs := waitExport(ctx, t, svc, officerKey, len(wantIDs))
	checkExport(t, recs, wantIDs)
	if t.Failed() {
		t.Logf("audit output:\n%s", containertest.Logs(ctx, svc.Container))
	}

	// A type filter narrows the export.
	status, body := export(ctx, t, svc.URL, officerKey, "?type="+events.TypeQueryReceived)
	if got := len(parseNDJSON(t, body)); status != http.StatusOK || got != 4 {
		t.Errorf("export type=%s: status %d, %d records, want 200 and 4", events.TypeQueryReceived, status, got)
	}
	tests := []struct {
		name, key, query string
		want             int
	}{
		{"no compliance group", staffKey, "", http.StatusForbidden},
		{"another tenant", officerKey, "?tenant=globex", http.StatusForbidden},
		{"no key", "", "", http.StatusUnauthorized},
		{"unknown key", "k-unknown-c1", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		status, body := export(ctx, t, svc.URL, tt.key, tt.query)
		if status != tt.want || strings.Contains(string(body), "payload") {
			t.Errorf("%s: status %d body %q, want %d without records", tt.name, status, body, tt.want)
		}
	}

	// Restart: the log in /data and the key beside it survive, and
	// nothing is recorded twice.
	timeout := 20 * time.Second
	if err := svc.Container.Stop(ctx, &timeout); err != nil {
		t.Fatalf("stop audit: %v", err)
	}
	if st, err := svc.Container.State(ctx); err != nil || st.ExitCode != 0 {
		t.Errorf("audit exit after SIGTERM: state %+v, err %v\n%s", st, err, containertest.Logs(ctx, svc.Container))
	}
	if err := svc.Container.Start(ctx); err != nil {
		t.Fatalf("restart audit: %v\n%s", err, containertest.Logs(ctx, svc.Container))
	}
	u, err := svc.Container.PortEndpoint(ctx, "8080/tcp", "http")
	if err != nil {
		t.Fatal(err)
	}
	svc.URL = u
	recs = waitExport(ctx, t, svc, officerKey, len(wantIDs))
	checkExport(t, recs, wantIDs)
}

func headerOf(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// export calls GET /v1/audit/export with key (none when empty) and
// returns the status and body.
func export(ctx context.Context, t *testing.T, base, key, query string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/audit/export"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, []byte(err.Error())
	}
	if resp.StatusCode == http.StatusOK && resp.Trailer.Get(TrailerStatus) != "ok" {
		t.Errorf("export trailer %s = %q", TrailerStatus, resp.Trailer.Get(TrailerStatus))
	}
	return resp.StatusCode, body
}

func parseNDJSON(t *testing.T, body []byte) []Record {
	t.Helper()
	var out []Record
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// waitExport polls the export (up to 60 s) until it holds at least n
// records, and returns them.
func waitExport(ctx context.Context, t *testing.T, svc *containertest.Running, key string, n int) []Record {
	t.Helper()
	waited := false
	defer func() {
		if !waited { // the wait failed the test: show why the service lags
			t.Logf("audit output:\n%s", containertest.Logs(ctx, svc.Container))
		}
	}()
	var recs []Record
	eventually.NoError(t, fmt.Sprintf("%d exported records", n), 60*time.Second, func() error {
		status, body := export(ctx, t, svc.URL, key, "")
		if status != http.StatusOK {
			return fmt.Errorf("export: status %d body %q", status, body)
		}
		if recs = parseNDJSON(t, body); len(recs) < n {
			return fmt.Errorf("%d records", len(recs))
		}
		return nil
	})
	waited = true
	return recs
}

// checkExport checks that recs are exactly the records of wantIDs, of
// tenant acme, in a gapless sequence, with their payloads decrypted.
func checkExport(t *testing.T, recs []Record, wantIDs []string) {
	t.Helper()
	var ids []string
	var kept []Record
	for _, r := range recs {
		// The service's own events (its exports, refused requests) are
		// recorded too; they are checked in vault_container_test.go.
		if r.Source != "tributary/audit" {
			kept = append(kept, r)
		}
	}
	recs = kept
	for i, r := range recs {
		ids = append(ids, r.ID)
		if r.Tenant != "acme" {
			t.Errorf("record %d of tenant %q leaked to acme's export", i, r.Tenant)
		}
		var p struct {
			RequestID string `json:"request_id"`
			TenantID  string `json:"tenant_id"`
		}
		if err := json.Unmarshal(r.Payload, &p); err != nil || p.TenantID != "acme" || p.RequestID == "" {
			t.Errorf("record %d payload %s not the decrypted event (%v)", i, r.Payload, err)
		}
		if i > 0 && r.Seq <= recs[i-1].Seq {
			t.Errorf("record %d seq %d after %d", i, r.Seq, recs[i-1].Seq)
		}
	}
	sort.Strings(ids)
	if strings.Join(ids, ",") != strings.Join(wantIDs, ",") {
		t.Errorf("exported ids %v, want %v", ids, wantIDs)
	}
}
