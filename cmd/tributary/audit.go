package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tributary-rag/tributary/services/audit"
)

// runAudit dispatches `tributary audit verify|export|rotate|rewrap|shred`.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func() {
		fmt.Fprintln(stderr, "usage: tributary audit verify --data-dir DIR [--key-file FILE | --vault-addr URL ...]")
		fmt.Fprintln(stderr, "       tributary audit export --server URL [--api-key KEY] [--since T] [--until T] [--tenant T] [--type T]")
		fmt.Fprintln(stderr, "       tributary audit rotate --server URL [--api-key KEY]")
		fmt.Fprintln(stderr, "       tributary audit rewrap --server URL [--api-key KEY] [--raise-min-decryption]")
		fmt.Fprintln(stderr, "       tributary audit shred --server URL --tenant T --yes [--api-key KEY]")
	}
	if len(args) == 0 {
		usage()
		return errUsage
	}
	switch args[0] {
	case "verify":
		return runAuditVerify(ctx, args[1:], stdout, stderr)
	case "export":
		return runAuditExport(ctx, args[1:], stdout, stderr)
	case audit.ActionRotate, audit.ActionRewrap, audit.ActionShred:
		return runAuditKeys(ctx, args[0], args[1:], stdout, stderr)
	case "-h", "--help", "help":
		usage()
		return nil
	default:
		fmt.Fprintf(stderr, "tributary audit: unknown subcommand %q\n", args[0])
		usage()
		return errUsage
	}
}

// auditDir returns the directory holding the segments: dir itself, or
// dir/audit when dir is the data directory of `tributary dev`.
func auditDir(dir string) string {
	if m, _ := filepath.Glob(filepath.Join(dir, "seg-*.aud")); len(m) > 0 {
		return dir
	}
	sub := filepath.Join(dir, "audit")
	if m, _ := filepath.Glob(filepath.Join(sub, "seg-*.aud")); len(m) > 0 {
		return sub
	}
	return dir
}

// runAuditVerify checks an audit log and fails (exit code 1) on the first
// problem, naming the segment and record.
func runAuditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fset.SetOutput(stderr)
	dataDir := fset.String("data-dir", os.Getenv("TRIBUTARY_DATA_DIR"), "the audit service's data directory (or that of `tributary dev`)")
	keyFile := fset.String("key-file", os.Getenv("TRIBUTARY_AUDIT_KEY_FILE"), "key file to authenticate and decrypt every record (default <dir>/audit.key when present); with --vault-addr, for the format-1 segments of earlier releases")
	vc := audit.DefaultSettings().WithVaultEnv(os.Getenv).Vault
	vc.Register(fset)
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *dataDir == "" || fset.NArg() > 0 {
		fmt.Fprintln(stderr, "audit verify: --data-dir is required and takes no arguments")
		return errUsage
	}
	dir := auditDir(*dataDir)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("audit verify: %s is not a directory", dir)
	}
	var keys audit.KeyProvider
	kf := *keyFile
	if vc.Addr != "" {
		vk, err := audit.NewVaultKeys(ctx, vc)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		defer vk.Close()
		keys = vk
	}
	if kf == "" {
		if _, err := os.Stat(filepath.Join(dir, "audit.key")); err == nil {
			kf = filepath.Join(dir, "audit.key")
		}
	}
	if kf != "" {
		// Never create a key here: a missing key file is an error.
		if _, err := os.Stat(kf); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit verify: key file %s does not exist", kf)
		}
		k, err := audit.LoadKeyFile(kf)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		if keys != nil {
			// With Vault, the key file reads the format-1 segments of
			// earlier releases.
			keys = audit.WithFormat1Keys(keys, k)
		} else {
			keys = k
		}
	} else if keys == nil {
		fmt.Fprintln(stderr, "audit verify: no key file: checking structure and hash chain only, not authenticating records")
	}
	start := time.Now()
	rep, err := audit.Verify(ctx, dir, keys)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL %s: %v\n", dir, err)
		return fmt.Errorf("audit verify: %w", err)
	}
	state := "last segment open (service running or crashed)"
	if rep.Sealed {
		state = "last segment sealed"
	}
	mode := "records authenticated and decrypted"
	if !rep.Decrypted {
		mode = "structure and chain only"
	}
	for _, r := range rep.Shredded {
		fmt.Fprintf(stdout, "SHREDDED tenant %q: %d records, seq %d to %d (key destroyed; chain intact)\n", r.Tenant, r.Records, r.FirstSeq, r.LastSeq)
	}
	fmt.Fprintf(stdout, "OK %s: %d records in %d segments, last seq %d, head %s; %s; %s (%s)\n",
		dir, rep.Records, rep.Segments, rep.LastSeq, rep.Head, state, mode, time.Since(start).Round(time.Millisecond))
	return nil
}

// runAuditExport streams the audit export to stdout and fails if the
// server refused it or cut it short.
func runAuditExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("audit export", flag.ContinueOnError)
	fset.SetOutput(stderr)
	server := fset.String("server", os.Getenv("TRIBUTARY_SERVER"), "base URL of the audit service or of `tributary dev`")
	apiKey := fset.String("api-key", os.Getenv("TRIBUTARY_API_KEY"), "API key with the compliance group (env TRIBUTARY_API_KEY)")
	since := fset.String("since", "", "first time included (RFC 3339 or YYYY-MM-DD)")
	until := fset.String("until", "", "first time excluded (RFC 3339 or YYYY-MM-DD)")
	tenant := fset.String("tenant", "", "tenant (compliance-admin keys only for other tenants)")
	var types []string
	fset.Func("type", "event type, or prefix ending in '*'; repeatable", func(s string) error {
		types = append(types, s)
		return nil
	})
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *server == "" || fset.NArg() > 0 {
		fmt.Fprintln(stderr, "audit export: --server is required and takes no arguments")
		return errUsage
	}
	if *apiKey == "" {
		fmt.Fprintln(stderr, "audit export: an API key is required (--api-key or TRIBUTARY_API_KEY)")
		return errUsage
	}
	q := url.Values{}
	for k, v := range map[string]string{"since": *since, "until": *until, "tenant": *tenant} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for _, t := range types {
		q.Add("type", t)
	}
	u := strings.TrimRight(*server, "/") + "/v1/audit/export"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+*apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("audit export: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if st := resp.Trailer.Get(audit.TrailerStatus); st != "ok" {
		if st == "" {
			st = "stream ended without a status"
		}
		return fmt.Errorf("audit export: incomplete: %s", st)
	}
	fmt.Fprintf(stderr, "audit export: %s records\n", resp.Trailer.Get(audit.TrailerRecords))
	var shredded []audit.ShredRange
	if err := json.Unmarshal([]byte(resp.Trailer.Get(audit.TrailerShredded)), &shredded); err == nil {
		for _, r := range shredded {
			fmt.Fprintf(stderr, "audit export: tenant %q: %d records shredded, seq %d to %d\n", r.Tenant, r.Records, r.FirstSeq, r.LastSeq)
		}
	}
	return nil
}

// runAuditKeys asks the audit service to rotate the tenants' transit keys,
// rewrap the stored data keys, or shred one tenant's key; the API key needs
// the compliance-admin group, and the service records the request as an
// admin_action event.
func runAuditKeys(ctx context.Context, action string, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("audit "+action, flag.ContinueOnError)
	fset.SetOutput(stderr)
	server := fset.String("server", os.Getenv("TRIBUTARY_SERVER"), "base URL of the audit service or of `tributary dev`")
	apiKey := fset.String("api-key", os.Getenv("TRIBUTARY_API_KEY"), "API key with the compliance and compliance-admin groups (env TRIBUTARY_API_KEY)")
	var tenant *string
	var yes, raise *bool
	switch action {
	case audit.ActionShred:
		tenant = fset.String("tenant", "", "tenant whose records to make unreadable for good")
		yes = fset.Bool("yes", false, "confirm: the tenant's records so far can never be decrypted again")
	case audit.ActionRewrap:
		raise = fset.Bool("raise-min-decryption", false, "then refuse older key versions (min_decryption_version)")
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *server == "" || *apiKey == "" || fset.NArg() > 0 {
		fmt.Fprintf(stderr, "audit %s: --server and an API key (--api-key or TRIBUTARY_API_KEY) are required; no arguments\n", action)
		return errUsage
	}
	q := url.Values{}
	if tenant != nil {
		if *tenant == "" || !*yes {
			fmt.Fprintln(stderr, "audit shred: --tenant and --yes are required")
			return errUsage
		}
		q.Set("tenant", *tenant)
	}
	if raise != nil && *raise {
		q.Set("raise_min_decryption", "true")
	}
	u := strings.TrimRight(*server, "/") + "/v1/audit/keys/" + action
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	req.Header.Set("Authorization", "Bearer "+*apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("audit %s: %s: %s", action, resp.Status, strings.TrimSpace(string(b)))
	}
	var res audit.AdminResult
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("audit %s: bad answer: %w", action, err)
	}
	switch action {
	case audit.ActionRotate:
		fmt.Fprintf(stdout, "rotated %d keys: %s\n", len(res.Keys), strings.Join(res.Keys, " "))
	case audit.ActionRewrap:
		fmt.Fprintf(stdout, "rewrapped %d data keys", res.Rewrapped)
		if len(res.Keys) > 0 {
			fmt.Fprintf(stdout, "; min_decryption_version raised on %d keys", len(res.Keys))
		}
		fmt.Fprintln(stdout)
	case audit.ActionShred:
		fmt.Fprintf(stdout, "shredded tenant %q: its records so far can no longer be decrypted\n", res.Tenant)
	}
	return nil
}
