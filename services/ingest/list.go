package ingest

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"strings"
)

// List limits.
const (
	DefaultListLimit = 1000
	MaxListLimit     = 10000
)

// ListQuery selects documents for List.
type ListQuery struct {
	// SourcePrefix keeps the documents whose source starts with it; empty
	// keeps all.
	SourcePrefix string
	// After is the last document id of the previous page; List returns
	// the ids after it.
	After string
	// Limit is the page size (default DefaultListLimit, at most
	// MaxListLimit).
	Limit int
}

// Entry is one document in a List page: enough for a sync client to
// decide whether its copy changed (ContentHash) or is gone (Source).
type Entry struct {
	DocumentID  string `json:"document_id"`
	Version     int    `json:"version"`
	Source      string `json:"source,omitempty"`
	Title       string `json:"title,omitempty"`
	ContentHash string `json:"content_hash"`
	Size        int64  `json:"size"`
}

// ListResult is one page of List. Next is the After of the next page,
// empty on the last page.
type ListResult struct {
	Documents []Entry `json:"documents"`
	Next      string  `json:"next,omitempty"`
}

func (s *service) List(ctx context.Context, p Principal, q ListQuery) (ListResult, error) {
	if p.Tenant == "" {
		return ListResult{}, ErrUnauthenticated
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultListLimit
	case q.Limit < 0 || q.Limit > MaxListLimit:
		return ListResult{}, fmt.Errorf("%w: limit %d, want 1 to %d", ErrInvalid, q.Limit, MaxListLimit)
	}
	recs := s.store.List(p.Tenant, q.After, func(r Record) bool {
		return r.Status == StatusActive && strings.HasPrefix(r.Source, q.SourcePrefix) && maySee(p, r.Groups)
	}, q.Limit+1)
	res := ListResult{Documents: make([]Entry, 0, min(len(recs), q.Limit))}
	for i, r := range recs {
		if i == q.Limit {
			res.Next = recs[i-1].DocumentID
			break
		}
		res.Documents = append(res.Documents, Entry{
			DocumentID: r.DocumentID, Version: r.Version, Source: r.Source, Title: r.Title,
			ContentHash: r.ContentHash, Size: r.Size,
		})
	}
	return res, nil
}

// List returns up to n records of tenant with ids above after that keep
// accepts, in id order. It keeps only the n smallest ids while it scans (a
// max-heap), so paging through 100,000 documents does not sort them all
// for every page.
func (s *Store) List(tenant, after string, keep func(Record) bool, n int) []Record {
	if n <= 0 {
		return nil
	}
	top := &byIDDesc{}
	s.mu.RLock()
	for k, r := range s.recs {
		if k.tenant != tenant || k.id <= after || top.Len() == n && k.id >= (*top)[0].DocumentID || !keep(r) {
			continue
		}
		if top.Len() == n {
			(*top)[0] = r
			heap.Fix(top, 0)
		} else {
			heap.Push(top, r)
		}
	}
	s.mu.RUnlock()
	out := []Record(*top)
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.DocumentID, b.DocumentID) })
	for i := range out {
		out[i] = out[i].clone()
	}
	return out
}

// byIDDesc is a max-heap of records by document id.
type byIDDesc []Record

func (h byIDDesc) Len() int           { return len(h) }
func (h byIDDesc) Less(i, j int) bool { return h[i].DocumentID > h[j].DocumentID }
func (h byIDDesc) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *byIDDesc) Push(x any)        { *h = append(*h, x.(Record)) }
func (h *byIDDesc) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
