package main

import (
	"context"
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
	"strings"
	"sync"
	"time"
)

// ingestFile is one file to upload.
type ingestFile struct {
	path string
	size int64
}

// ingestResult is the server's answer to one upload.
type ingestResult struct {
	DocumentID string `json:"document_id"`
	Version    int    `json:"version"`
	Status     string `json:"status"`
}

// runIngest implements `tributary ingest FILE|DIR… --server URL`.
func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fset.SetOutput(stderr)
	server := fset.String("server", envOr("TRIBUTARY_SERVER", "http://127.0.0.1:8080"), "base URL of the ingest service or of `tributary dev` (env TRIBUTARY_SERVER)")
	key := fset.String("api-key", os.Getenv("TRIBUTARY_API_KEY"), "API key (env TRIBUTARY_API_KEY)")
	groups := fset.String("groups", "", "comma-separated groups that may see the documents (default: the key's groups)")
	wait := fset.Bool("wait", false, "after uploading, wait until every document is indexed")
	timeout := fset.Duration("timeout", 10*time.Minute, "longest time for the whole command")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: tributary ingest FILE|DIR... [--server URL] [--api-key KEY] [--groups G1,G2] [--wait]")
		fset.PrintDefaults()
	}
	paths, err := parseInterspersed(fset, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if len(paths) == 0 || *key == "" {
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
	files, err := collectFiles(paths)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if len(files) == 0 {
		return errors.New("ingest: no files found")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	up := uploader{base: base.String(), key: *key, groups: *groups, client: &http.Client{}}
	bar := newProgress(stderr, len(files), totalSize(files))
	var failed int
	var done []ingestResult
	for _, f := range files {
		res, err := up.upload(ctx, f, bar.add)
		bar.fileDone()
		if err != nil {
			failed++
			bar.clear()
			fmt.Fprintf(stderr, "%s: %v\n", f.path, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		bar.clear()
		fmt.Fprintf(stdout, "%s\t%s\tv%d\t%s\n", f.path, res.DocumentID, res.Version, res.Status)
		done = append(done, res)
	}
	bar.finish()
	if *wait && len(done) > 0 {
		for _, r := range done {
			if err := up.waitIndexed(ctx, r); err != nil {
				return fmt.Errorf("ingest: %w", err)
			}
			fmt.Fprintf(stdout, "%s\tv%d\tindexed\n", r.DocumentID, r.Version)
		}
	}
	if failed > 0 {
		return fmt.Errorf("ingest: %d of %d files failed", failed, len(files))
	}
	return nil
}

// collectFiles expands directories (recursively, skipping hidden entries)
// into regular files, in lexical order.
func collectFiles(paths []string) ([]ingestFile, error) {
	var out []ingestFile
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, ingestFile{path: p, size: st.Size()})
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != p && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			out = append(out, ingestFile{path: path, size: info.Size()})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func totalSize(files []ingestFile) int64 {
	var n int64
	for _, f := range files {
		n += f.size
	}
	return n
}

// uploader posts documents to /v1/documents.
type uploader struct {
	base, key, groups string
	client            *http.Client
}

// upload sends one file as multipart/form-data, streaming it from disk and
// reporting bytes sent to progress.
func (u uploader) upload(ctx context.Context, f ingestFile, progress func(int64)) (ingestResult, error) {
	file, err := os.Open(f.path)
	if err != nil {
		return ingestResult{}, err
	}
	defer file.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			if u.groups != "" {
				if err := mw.WriteField("groups", u.groups); err != nil {
					return err
				}
			}
			part, err := mw.CreateFormFile("file", filepath.Base(f.path))
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, &countingReader{r: file, add: progress}); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.base+"/v1/documents", pr)
	if err != nil {
		pr.CloseWithError(err)
		return ingestResult{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+u.key)
	resp, err := u.client.Do(req)
	if err != nil {
		pr.CloseWithError(err)
		return ingestResult{}, err
	}
	defer resp.Body.Close()
	var res ingestResult
	if err := decodeAPIResponse(resp, &res); err != nil {
		return ingestResult{}, err
	}
	return res, nil
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

// decodeAPIResponse decodes a 2xx JSON body into v, or turns the API's
// {"error":{"code","message"}} into an error.
func decodeAPIResponse(resp *http.Response, v any) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
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

// countingReader reports every read's size.
type countingReader struct {
	r   io.Reader
	add func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && c.add != nil {
		c.add(int64(n))
	}
	return n, err
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
	p.draw(true)
}

// clear erases the bar so that a line can be printed; the next draw
// brings it back.
func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawnWidth > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.drawnWidth))
		p.drawnWidth = 0
	}
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
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
