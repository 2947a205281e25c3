package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// ingestFile is one file of a sync: where it is on disk and the source
// (its identity on the server) it is uploaded under.
type ingestFile struct {
	path   string
	source string
	size   int64
}

// ingestResult is the server's answer to one upload.
type ingestResult struct {
	DocumentID string `json:"document_id"`
	Version    int    `json:"version"`
	Status     string `json:"status"`
}

// syncOptions are the flags of `tributary ingest` that shape a sync.
type syncOptions struct {
	prefix    string
	hasPrefix bool
	prune     bool
	parallel  int
	maxSize   int64
	// afterRead, when set, runs after a file's bytes are read and before
	// its size and modification time are looked at again: tests change
	// or remove files there to make a file that changes while it is read.
	afterRead func(path string)
}

// errSkipped marks what a sync leaves out by design and reports without
// failing: files that are not regular (named pipes, sockets, devices),
// symbolic link loops, dangling links, and entries removed after they were
// listed. Everything else a sync reports is a failure: the command exits
// non-zero.
var errSkipped = errors.New("skipped")

// runIngest implements `tributary ingest FILE|DIR… --server URL`: a sync
// of each tree to the server. A file's document id derives (on the server)
// from its source, the path relative to the tree's root under a prefix, so
// running it again never duplicates: new files are added, changed files
// become new versions, unchanged files are skipped without upload, and
// with --prune documents whose files are gone are deleted.
func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fset.SetOutput(stderr)
	server := fset.String("server", envOr("TRIBUTARY_SERVER", "http://127.0.0.1:8080"), "base URL of the ingest service or of `tributary dev` (env TRIBUTARY_SERVER)")
	key := fset.String("api-key", os.Getenv("TRIBUTARY_API_KEY"), "API key (env TRIBUTARY_API_KEY)")
	groups := fset.String("groups", "", "comma-separated groups that may see the documents (default: the key's groups)")
	wait := fset.Bool("wait", false, "after uploading, wait until every document is indexed")
	timeout := fset.Duration("timeout", 10*time.Minute, "longest time for one sync")
	var opts syncOptions
	fset.Func("prefix", "source prefix of a directory's files (default: the directory's name and a slash; a file's source is its name)", func(v string) error {
		opts.prefix, opts.hasPrefix = v, true
		return nil
	})
	fset.BoolVar(&opts.prune, "prune", false, "delete the documents under the prefix whose files are gone")
	fset.IntVar(&opts.parallel, "parallel", 4, "uploads in flight")
	fset.Int64Var(&opts.maxSize, "max-size", 50<<20, "largest file uploaded, in bytes; larger ones are reported and skipped")
	watch := fset.Bool("watch", false, "sync again every --watch-interval until interrupted")
	interval := fset.Duration("watch-interval", 5*time.Second, "time between syncs with --watch")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: tributary ingest FILE|DIR... [--server URL] [--api-key KEY] [--groups G1,G2] [--prefix P] [--prune] [--watch] [--wait]")
		fset.PrintDefaults()
	}
	paths, err := parseInterspersed(fset, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if len(paths) == 0 || *key == "" || opts.parallel < 1 || opts.maxSize < 1 {
		fset.Usage()
		if *key == "" {
			fmt.Fprintln(stderr, "ingest: an API key is required (--api-key or TRIBUTARY_API_KEY)")
		}
		return errUsage
	}
	base, err := url.Parse(strings.TrimRight(*server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("ingest: bad server URL %q", *server)
	}
	up := uploader{base: base.String(), key: *key, groups: *groups, client: syncClient(opts.parallel)}
	for {
		sctx, cancel := context.WithTimeout(ctx, *timeout)
		st, err := syncTrees(sctx, up, paths, opts, stdout, stderr)
		if err == nil && *wait && len(st.uploaded) > 0 {
			for _, r := range st.uploaded {
				if err = up.waitIndexed(sctx, r); err != nil {
					break
				}
				fmt.Fprintf(stdout, "%s\tv%d\tindexed\n", r.DocumentID, r.Version)
			}
		}
		cancel()
		if err == nil && st.failed > 0 {
			err = fmt.Errorf("%d failed (see above); the rest is synced", st.failed)
		}
		if !*watch {
			if err != nil {
				return fmt.Errorf("ingest: %w", err)
			}
			return nil
		}
		if err != nil {
			fmt.Fprintf(stderr, "ingest: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

// syncStats counts what a sync did. seen counts the regular files listed;
// failed and skipped count reported problems, of files or of entries the
// walk left out (see errSkipped).
type syncStats struct {
	seen, added, updated, unchanged, deleted, failed, skipped int
	uploaded                                                  []ingestResult
}

// syncTrees syncs every path (a directory tree or a file) and prints one
// line per change on stdout, each problem on stderr and a summary.
func syncTrees(ctx context.Context, up uploader, paths []string, opts syncOptions, stdout, stderr io.Writer) (syncStats, error) {
	var st syncStats
	var mu sync.Mutex
	var bar *progress // from when the files are listed
	// problem reports a file or entry that is not synced and counts it;
	// the caller holds mu.
	problem := func(path string, err error) {
		if errors.Is(err, errSkipped) {
			st.skipped++
		} else {
			st.failed++
		}
		if bar != nil {
			bar.printf(stderr, "%s: %v\n", path, err)
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
		}
	}
	type root struct {
		prefix string
		files  []ingestFile
		// incomplete holds the source prefixes of directories that could
		// not be read: their documents are never pruned.
		incomplete []string
		exact      bool // a single file: its source is the whole prefix
	}
	var roots []root
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return st, err
		}
		if !info.IsDir() {
			src := filepath.Base(p)
			if opts.hasPrefix {
				src = opts.prefix + src
			}
			roots = append(roots, root{prefix: src, exact: true, files: []ingestFile{{path: p, source: sourceName(src), size: info.Size()}}})
			continue
		}
		prefix := opts.prefix
		if !opts.hasPrefix {
			abs, err := filepath.Abs(p)
			if err != nil {
				return st, err
			}
			prefix = sourceName(filepath.Base(abs)) + "/"
		}
		files, incomplete := collectTree(p, prefix, problem) // no workers yet: mu is not needed
		roots = append(roots, root{prefix: prefix, files: files, incomplete: incomplete})
	}
	var total int64
	for _, r := range roots {
		st.seen += len(r.files)
		for _, f := range r.files {
			total += f.size
		}
	}
	bar = newProgress(stderr, st.seen, total)
	defer bar.finish() // a no-op after the finish below
	for _, r := range roots {
		known, err := up.list(ctx, r.prefix)
		if err != nil {
			return st, fmt.Errorf("list documents under %q: %w", r.prefix, err)
		}
		if r.exact {
			// A file's source is the prefix; other documents that merely
			// start with it are not this file's.
			for src := range known {
				if src != r.prefix {
					delete(known, src)
				}
			}
		}
		jobs := make(chan ingestFile)
		var wg sync.WaitGroup
		for range opts.parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for f := range jobs {
					prev, exists := known[f.source]
					res, err := syncFile(ctx, up, f, prev.ContentHash, opts, bar.add)
					bar.fileDone()
					mu.Lock()
					switch {
					case err != nil:
						problem(f.path, err)
					case res.Status == statusSkipped:
						st.unchanged++
					default:
						if res.Status == "unchanged" {
							st.unchanged++
						} else if exists {
							st.updated++
						} else {
							st.added++
						}
						st.uploaded = append(st.uploaded, res)
						bar.printf(stdout, "%s\t%s\tv%d\t%s\n", f.path, res.DocumentID, res.Version, res.Status)
					}
					mu.Unlock()
				}
			}()
		}
		present := make(map[string]bool, len(r.files))
	feed:
		for _, f := range r.files {
			present[f.source] = true
			select {
			case jobs <- f:
			case <-ctx.Done():
				break feed
			}
		}
		close(jobs)
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if !opts.prune {
			continue
		}
		for src, e := range known {
			if present[src] || hasAnyPrefix(src, r.incomplete) {
				continue
			}
			res, err := up.delete(ctx, e.DocumentID)
			if err != nil {
				st.failed++
				bar.printf(stderr, "%s: delete %s: %v\n", src, e.DocumentID, err)
				continue
			}
			st.deleted++
			bar.printf(stdout, "%s\t%s\tv%d\t%s\n", src, res.DocumentID, res.Version, res.Status)
		}
	}
	bar.finish()
	fmt.Fprintf(stderr, "sync: %d files: %d added, %d updated, %d unchanged, %d deleted, %d failed, %d skipped\n",
		st.seen, st.added, st.updated, st.unchanged, st.deleted, st.failed, st.skipped)
	return st, nil
}

// statusSkipped marks a file whose content hash matches the server's
// current version: nothing was uploaded.
const statusSkipped = "skipped"

// maxReadTries bounds the reads of a file that keeps changing.
const maxReadTries = 3

// syncFile uploads f unless its content hash equals serverHash. It reads
// the file whole and uploads exactly the bytes it hashed, and only when
// the file's size and modification time were the same before and after
// the read: a file that changes while it is read is read again, and after
// maxReadTries reported, never half-uploaded.
func syncFile(ctx context.Context, up uploader, f ingestFile, serverHash string, opts syncOptions, progress func(int64)) (ingestResult, error) {
	var data []byte
	for try := 1; ; try++ {
		b, stable, err := readStable(f.path, opts.maxSize, opts.afterRead)
		if err != nil {
			return ingestResult{}, err
		}
		if stable {
			data = b
			break
		}
		if try == maxReadTries {
			return ingestResult{}, fmt.Errorf("changed while being read (%d tries); skipped until the next sync", maxReadTries)
		}
	}
	sum := sha256.Sum256(data)
	if "sha256:"+hex.EncodeToString(sum[:]) == serverHash {
		progress(int64(len(data)))
		return ingestResult{Status: statusSkipped}, nil
	}
	return up.upload(ctx, f, data, progress)
}

// readStable reads a regular file of at most maxSize bytes and reports
// whether it was unchanged (size and modification time) across the read.
// afterRead, when not nil, runs between the read and the second look.
// A path that is gone is errSkipped, and so is one that is not a regular
// file: it is opened without blocking (a named pipe without a writer
// would block an ordinary open for ever) and never read.
func readStable(path string, maxSize int64, afterRead func(string)) ([]byte, bool, error) {
	file, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("removed after it was listed; %w", errSkipped)
	}
	if err != nil {
		return nil, false, err
	}
	defer file.Close()
	before, err := file.Stat()
	if err != nil {
		return nil, false, err
	}
	if !before.Mode().IsRegular() {
		return nil, false, notRegular(before.Mode())
	}
	if before.Size() > maxSize {
		return nil, false, fmt.Errorf("%s, over --max-size %s", humanBytes(before.Size()), humanBytes(maxSize))
	}
	b, err := io.ReadAll(io.LimitReader(file, maxSize+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > maxSize {
		return nil, false, fmt.Errorf("grew over --max-size %s while being read", humanBytes(maxSize))
	}
	if afterRead != nil {
		afterRead(path)
	}
	// By path, not by the open file: a file replaced by a rename while it
	// was read is a change too.
	after, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("removed while being read; %w", errSkipped)
	}
	if err != nil {
		return nil, false, err
	}
	stable := after.Size() == before.Size() && after.ModTime().Equal(before.ModTime()) && int64(len(b)) == before.Size()
	return b, stable, nil
}

// notRegular is the errSkipped of a file of mode m that is not regular.
func notRegular(m fs.FileMode) error {
	kind := "not a regular file"
	switch {
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeCharDevice != 0:
		kind = "a character device"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("%s, not a regular file; %w", kind, errSkipped)
}

// collectTree lists the regular files under dir in lexical order with
// their sources (prefix + slash-separated relative path). It skips hidden
// entries, follows symbolic links to files and directories, and reports
// (through problem) and leaves out what it cannot use: unreadable
// directories and entries, and (errSkipped) dangling links, links that
// loop, files that are not regular (never opened: a named pipe would
// block) and entries removed while it lists. It returns the source
// prefixes of the directories and entries it could not read, whose
// documents --prune keeps.
func collectTree(dir, prefix string, problem func(path string, err error)) (files []ingestFile, incomplete []string) {
	var walk func(path, rel string, ancestors []os.FileInfo)
	walk = func(path, rel string, ancestors []os.FileInfo) {
		entries, err := os.ReadDir(path)
		if err != nil {
			problem(path, err)
			incomplete = append(incomplete, prefix+rel)
			// ReadDir returns what it read before the error.
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			full := filepath.Join(path, name)
			erel := rel + sourceName(name)
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				problem(full, fmt.Errorf("removed while its directory was listed; %w", errSkipped))
				continue
			}
			if err != nil {
				// Whatever it is, its documents are not pruned.
				problem(full, err)
				incomplete = append(incomplete, prefix+erel)
				continue
			}
			if info.Mode()&os.ModeSymlink != 0 {
				target, err := os.Stat(full)
				if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
					err = pe.Err // the path is already in the report
				}
				switch {
				case errors.Is(err, fs.ErrNotExist):
					problem(full, fmt.Errorf("dangling symbolic link (%w); %w", err, errSkipped))
					continue
				case errors.Is(err, syscall.ELOOP):
					problem(full, fmt.Errorf("symbolic link loop (%w); %w", err, errSkipped))
					continue
				case err != nil:
					problem(full, err)
					incomplete = append(incomplete, prefix+erel)
					continue
				}
				if target.IsDir() && slices.ContainsFunc(ancestors, func(a os.FileInfo) bool { return os.SameFile(a, target) }) {
					problem(full, fmt.Errorf("symbolic link loops back to a directory above it; %w", errSkipped))
					continue
				}
				info = target
			}
			switch {
			case info.IsDir():
				walk(full, erel+"/", append(ancestors, info))
			case info.Mode().IsRegular():
				files = append(files, ingestFile{path: full, source: prefix + erel, size: info.Size()})
			default:
				problem(full, notRegular(info.Mode()))
			}
		}
	}
	root, err := os.Stat(dir)
	if err != nil {
		problem(dir, err)
		return nil, []string{prefix}
	}
	walk(dir, "", []os.FileInfo{root})
	return files, incomplete
}

// sourceName returns a file name as valid UTF-8 for a source: a name in
// another encoding (GBK, Latin-1) keeps its bytes as %XX escapes, so it is
// the same on every sync and never collides with a UTF-8 name.
func sourceName(name string) string {
	if utf8.ValidString(name) {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		if r == utf8.RuneError && size <= 1 {
			fmt.Fprintf(&b, "%%%02X", name[i])
			i++
			continue
		}
		b.WriteString(name[i : i+size])
		i += size
	}
	return b.String()
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// syncClient returns an HTTP client that keeps a connection per upload in
// flight. http.DefaultTransport keeps two idle connections per host: with
// more uploads in flight, every other upload would dial a new connection
// and leave the old one in TIME_WAIT, enough to run out of local ports on
// a tree of 100,000 files.
func syncClient(parallel int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(parallel, 2)
	return &http.Client{Transport: tr}
}

// uploader posts documents to /v1/documents.
type uploader struct {
	base, key, groups string
	client            *http.Client
}

// upload sends one file's bytes as multipart/form-data with its source,
// reporting bytes sent to progress.
func (u uploader) upload(ctx context.Context, f ingestFile, data []byte, progress func(int64)) (ingestResult, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("source", f.source); err != nil {
		return ingestResult{}, err
	}
	if u.groups != "" {
		if err := mw.WriteField("groups", u.groups); err != nil {
			return ingestResult{}, err
		}
	}
	part, err := mw.CreateFormFile("file", sourceName(filepath.Base(f.path)))
	if err != nil {
		return ingestResult{}, err
	}
	if _, err := part.Write(data); err != nil {
		return ingestResult{}, err
	}
	if err := mw.Close(); err != nil {
		return ingestResult{}, err
	}
	// Progress counts the file's bytes once it is sent, not the framing.
	defer progress(int64(len(data)))
	resp, err := u.postWithBackoff(ctx, body.Bytes(), mw.FormDataContentType())
	if err != nil {
		return ingestResult{}, err
	}
	defer resp.Body.Close()
	var res ingestResult
	if err := decodeAPIResponse(resp, &res); err != nil {
		return ingestResult{}, err
	}
	return res, nil
}

// maxUploadTries bounds the tries of one upload the server asks to retry.
const maxUploadTries = 8

// postWithBackoff posts body to /v1/documents, retrying while the server
// answers 429 (the key's upload rate or slots are taken) or 503, after the
// Retry-After it gives (else a doubling wait): a sync of a large tree
// keeps within the server's per-key limits instead of failing files.
func (u uploader) postWithBackoff(ctx context.Context, body []byte, contentType string) (*http.Response, error) {
	wait := 250 * time.Millisecond
	for try := 1; ; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.base+"/v1/documents", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+u.key)
		resp, err := u.client.Do(req)
		if err != nil {
			return nil, err
		}
		if (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) || try == maxUploadTries {
			return resp, nil
		}
		d := wait
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			d = time.Duration(s) * time.Second
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(d, 30*time.Second)):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// listedDocument is one entry of GET /v1/documents.
type listedDocument struct {
	DocumentID  string `json:"document_id"`
	Version     int    `json:"version"`
	Source      string `json:"source"`
	ContentHash string `json:"content_hash"`
}

// listPageLimit is the documents asked for in a page of GET
// /v1/documents; maxListPage bounds the page's body. A listed document is
// about 200 bytes with a short source, but its source may have 2,048 bytes
// (three for each byte of a file name that is not UTF-8), its title 1,024
// runes and its id 256 bytes, and JSON writes <, > and & in six: up to
// about 20 KB a document, 100 MB a page. The server sorts every matching
// document for each page, so fewer, larger pages list a tree of 100,000
// files several times faster than pages of 1,000.
const (
	listPageLimit = 5000
	maxListPage   = 128 << 20
)

// list reads every page of GET /v1/documents?source_prefix=prefix and
// returns the documents by source.
func (u uploader) list(ctx context.Context, prefix string) (map[string]listedDocument, error) {
	out := map[string]listedDocument{}
	after := ""
	for {
		q := url.Values{"source_prefix": {prefix}, "limit": {strconv.Itoa(listPageLimit)}}
		if after != "" {
			q.Set("after", after)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.base+"/v1/documents?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+u.key)
		resp, err := u.client.Do(req)
		if err != nil {
			return nil, err
		}
		var page struct {
			Documents []listedDocument `json:"documents"`
			Next      string           `json:"next"`
		}
		err = decodeAPIResponseLimit(resp, &page, maxListPage)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		for _, d := range page.Documents {
			out[d.Source] = d
		}
		if page.Next == "" || page.Next == after {
			return out, nil
		}
		after = page.Next
	}
}

// delete sends DELETE /v1/documents/{id}.
func (u uploader) delete(ctx context.Context, id string) (ingestResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u.base+"/v1/documents/"+url.PathEscape(id), nil)
	if err != nil {
		return ingestResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+u.key)
	resp, err := u.client.Do(req)
	if err != nil {
		return ingestResult{}, err
	}
	defer resp.Body.Close()
	var res ingestResult
	err = decodeAPIResponse(resp, &res)
	return res, err
}

// waitIndexed polls GET /v1/documents/{id} until the version is indexed.
func (u uploader) waitIndexed(ctx context.Context, r ingestResult) error {
	delay := 50 * time.Millisecond
	for {
		info, err := u.document(ctx, r.DocumentID)
		if err != nil {
			return err
		}
		if info.Status == statusIndexed && info.Version >= r.Version {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to be indexed: %w", r.DocumentID, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// document reads GET /v1/documents/{id}.
func (u uploader) document(ctx context.Context, id string) (ingestResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.base+"/v1/documents/"+url.PathEscape(id), nil)
	if err != nil {
		return ingestResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+u.key)
	resp, err := u.client.Do(req)
	if err != nil {
		return ingestResult{}, err
	}
	defer resp.Body.Close()
	var res ingestResult
	err = decodeAPIResponse(resp, &res)
	return res, err
}

// decodeAPIResponse decodes a 2xx JSON body of at most 1 MiB into v, or
// turns the API's {"error":{"code","message"}} into an error.
func decodeAPIResponse(resp *http.Response, v any) error {
	return decodeAPIResponseLimit(resp, v, 1<<20)
}

// decodeAPIResponseLimit is decodeAPIResponse for bodies of at most limit
// bytes; a longer body is an error, not a truncated one.
func decodeAPIResponseLimit(resp *http.Response, v any, limit int64) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode/100 == 2 && int64(len(body)) > limit {
		return fmt.Errorf("read response: over %s", humanBytes(limit))
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s: %s: %s", resp.Status, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s: %s", resp.Status, clipRunes(strings.TrimSpace(string(body)), 200))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// progress draws a one-line progress bar (files done/total, bytes) on w,
// at most ten times a second. It is safe for concurrent use.
type progress struct {
	mu         sync.Mutex
	w          io.Writer
	files      int
	filesDone  int
	total      int64
	sent       int64
	lastDraw   time.Time
	drawnWidth int
	finished   bool
}

func newProgress(w io.Writer, files int, total int64) *progress {
	p := &progress{w: w, files: files, total: total}
	p.draw(true)
	return p
}

func (p *progress) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent += n
	p.draw(false)
}

func (p *progress) fileDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.filesDone++
	p.draw(p.filesDone == p.files)
}

// printf erases the bar and prints a line to w (the bar's writer or
// another on the same terminal), under the bar's lock: the workers' draws
// and lines never interleave. The next draw brings the bar back.
func (p *progress) printf(w io.Writer, format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawnWidth > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.drawnWidth))
		p.drawnWidth = 0
	}
	fmt.Fprintf(w, format, a...)
}

// finish draws the bar a last time and ends its line; later calls do
// nothing.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	p.draw(true)
	fmt.Fprintln(p.w)
}

func (p *progress) draw(force bool) {
	if !force && time.Since(p.lastDraw) < 100*time.Millisecond {
		return
	}
	p.lastDraw = time.Now()
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(p.sent)/float64(p.total), 1)
	}
	fill := int(frac * width)
	line := fmt.Sprintf("[%s%s] %d/%d files  %s / %s", strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		p.filesDone, p.files, humanBytes(p.sent), humanBytes(p.total))
	fmt.Fprint(p.w, "\r"+line)
	p.drawnWidth = len(line)
}

// humanBytes formats n as B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 2; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMG"[exp])
}
