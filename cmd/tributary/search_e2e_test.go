package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon/daemontest"
	"github.com/tributary-rag/tributary/pkg/eventually"
)

// TestDevSearchRedacted ingests a document with a phone number, a card
// number and an e-mail address into `tributary dev` and searches for it:
// the search results come through moderation, so the response shows the
// personal data redacted and the ordinary numbers (an order number, an
// ISBN) as they are.
func TestDevSearchRedacted(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: starts the whole suite")
	}
	ctx := context.Background()
	logs := &daemontest.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dev stack logs (tail):\n%s", logs.Tail(8000))
		}
	})
	doc := filepath.Join(t.TempDir(), "front-desk.md")
	const text = "Front desk contacts\n\nFor deposits call the front desk at +1 415 555 0134, write to desk.lee@example.com " +
		"or pay with the desk card 4111 1111 1111 1111. Order number 20240517001 ships with the handbook, ISBN 978-0-306-40615-7.\n"
	if err := os.WriteFile(doc, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := startTestDev(t, t.TempDir(), "", logs)
	if ids := docIDs(t, cli(t, ctx, "ingest", doc, "--server", dev.url, "--api-key", keyA, "--wait")); len(ids) != 1 {
		t.Fatalf("ingest: ids %v, want 1", ids)
	}

	var snippet string
	eventually.NoError(t, "the document to be found", 60*time.Second, func() error {
		req, err := http.NewRequest(http.MethodPost, dev.url+"/v1/search", strings.NewReader(`{"query":"front desk deposits contacts","top_k":3}`))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+keyA)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("search: %d %s", resp.StatusCode, b)
		}
		var res struct {
			Results []struct{ Title, Snippet string }
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return err
		}
		for _, r := range res.Results {
			if strings.Contains(r.Snippet, "Order number") {
				snippet = r.Snippet
				return nil
			}
		}
		return fmt.Errorf("no result with the document's text: %s", b)
	})
	for _, leak := range []string{"555 0134", "desk.lee@example.com", "4111 1111"} {
		if strings.Contains(snippet, leak) {
			t.Errorf("search snippet shows %q: %q", leak, snippet)
		}
	}
	for _, want := range []string{"[REDACTED:phone]", "[REDACTED:email]", "[REDACTED:bank_card]", "Order number 20240517001", "ISBN 978-0-306-40615-7"} {
		if !strings.Contains(snippet, want) {
			t.Errorf("search snippet %q lacks %q", snippet, want)
		}
	}
}
