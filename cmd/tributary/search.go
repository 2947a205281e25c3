package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// searchRequest is the body of POST /v1/search.
type searchRequest struct {
	Query  string        `json:"query"`
	TopK   int           `json:"top_k,omitempty"`
	Filter *searchFilter `json:"filter,omitempty"`
}

type searchFilter struct {
	DocumentIDs  []string `json:"document_ids,omitempty"`
	SourcePrefix string   `json:"source_prefix,omitempty"`
}

// searchHit is one result of POST /v1/search.
type searchHit struct {
	DocumentID  string   `json:"document_id"`
	ChunkID     string   `json:"chunk_id"`
	Title       string   `json:"title"`
	Source      string   `json:"source"`
	Score       float64  `json:"score"`
	Snippet     string   `json:"snippet"`
	Page        int      `json:"page"`
	HeadingPath []string `json:"heading_path"`
}

type searchResponse struct {
	RequestID string      `json:"request_id"`
	Results   []searchHit `json:"results"`
}

// search calls POST /v1/search on the server at base.
func search(ctx context.Context, client *http.Client, base, key string, r searchRequest) (searchResponse, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return searchResponse{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/v1/search", bytes.NewReader(body))
	if err != nil {
		return searchResponse{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := client.Do(req)
	if err != nil {
		return searchResponse{}, err
	}
	defer resp.Body.Close()
	var res searchResponse
	err = decodeAPIResponse(resp, &res)
	return res, err
}

// runSearch implements `tributary search "query" --server URL`.
func runSearch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("search", flag.ContinueOnError)
	fset.SetOutput(stderr)
	server := fset.String("server", envOr("TRIBUTARY_SERVER", "http://127.0.0.1:8080"), "base URL of the edge or of `tributary dev` (env TRIBUTARY_SERVER)")
	key := fset.String("api-key", os.Getenv("TRIBUTARY_API_KEY"), "API key (env TRIBUTARY_API_KEY)")
	topK := fset.Int("top-k", 10, "results (1 to 50)")
	prefix := fset.String("source-prefix", "", "only documents whose source starts with this")
	asJSON := fset.Bool("json", false, "print the API's JSON response")
	fset.Usage = func() {
		fmt.Fprintln(stderr, `usage: tributary search "query" [--server URL] [--api-key KEY] [--top-k N] [--source-prefix P] [--json]`)
		fset.PrintDefaults()
	}
	pos, err := parseInterspersed(fset, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if len(pos) != 1 || *key == "" {
		fset.Usage()
		if *key == "" {
			fmt.Fprintln(stderr, "search: an API key is required (--api-key or TRIBUTARY_API_KEY)")
		}
		return errUsage
	}
	if u, err := url.Parse(*server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("search: bad server URL %q", *server)
	}
	req := searchRequest{Query: pos[0], TopK: *topK}
	if *prefix != "" {
		req.Filter = &searchFilter{SourcePrefix: *prefix}
	}
	res, err := search(ctx, &http.Client{}, *server, *key, req)
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if len(res.Results) == 0 {
		fmt.Fprintln(stdout, "no results")
		return nil
	}
	for i, h := range res.Results {
		where := h.Source
		if len(h.HeadingPath) > 0 {
			where += " › " + strings.Join(h.HeadingPath, " › ")
		}
		if h.Page > 0 {
			where += fmt.Sprintf(" (p. %d)", h.Page)
		}
		fmt.Fprintf(stdout, "%2d. %.3f  %s  %s\n    %s\n", i+1, h.Score, h.Title, where, clipRunes(strings.Join(strings.Fields(h.Snippet), " "), 200))
	}
	return nil
}
