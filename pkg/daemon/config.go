// Package daemon is the runtime every Tributary service shares:
// configuration from environment variables and flags, JSON logs, the
// /healthz, /readyz and /metrics endpoints, the wiring every service is
// built on, and a run group that drains on shutdown.
//
// A service package owns its settings and its wiring (see Settings): a
// type with Register, Check and Wire. Its main is then:
//
//	func main() { os.Exit(daemon.Main("ingest", run)) }
//
//	func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
//		s := ingest.DefaultSettings()
//		return daemon.RunService(ctx, "ingest", daemon.NeedKafka|daemon.NeedDataDir|daemon.NeedAPIKeys, &s, args, getenv, stderr)
//	}
//
// and tributary dev registers, checks and wires every service's Settings
// on one flag set and one Wiring.
//
// Every flag has an environment variable: "TRIBUTARY_" plus the flag name
// upper-cased with '-' as '_' (--kafka-brokers and TRIBUTARY_KAFKA_BROKERS).
// A flag given on the command line overrides the variable; the variable's
// own name is accepted as a flag too (--TRIBUTARY_KAFKA_BROKERS=…).
package daemon

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// EnvPrefix starts the environment variable of every flag.
const EnvPrefix = "TRIBUTARY_"

// Need says which settings a service requires.
type Need int

// Settings a service can require; combine with '|'.
const (
	NeedKafka Need = 1 << iota
	NeedDataDir
	NeedQdrant
	NeedAPIKeys
)

// Config is the configuration every service shares. Defaults are in the
// field comments.
type Config struct {
	// KafkaBrokers are bootstrap host:port addresses
	// (TRIBUTARY_KAFKA_BROKERS, comma-separated; default localhost:9092).
	KafkaBrokers []string
	// TopicPrefix starts every topic name (TRIBUTARY_TOPIC_PREFIX; default
	// "tributary").
	TopicPrefix string
	// HTTPAddr is the listen address of the HTTP API and the health and
	// metrics endpoints (TRIBUTARY_HTTP_ADDR; default ":8080").
	HTTPAddr string
	// DataDir holds the service's durable state (TRIBUTARY_DATA_DIR); it is
	// created if missing.
	DataDir string
	// QdrantAddr is the host:port of Qdrant's gRPC API
	// (TRIBUTARY_QDRANT_ADDR; default localhost:6334).
	QdrantAddr string
	// APIKeys are the accepted keys (TRIBUTARY_API_KEYS,
	// "key:tenant:g1|g2,…"); never nil after ParseConfig.
	APIKeys *apikey.Set
	// LogLevel is debug, info, warn or error (TRIBUTARY_LOG_LEVEL; default
	// info).
	LogLevel slog.Level
	// KafkaSecurity is how the Kafka clients authenticate (SASL:
	// TRIBUTARY_KAFKA_SASL_MECHANISM, _USERNAME, _PASSWORD) and encrypt
	// (TLS: TRIBUTARY_KAFKA_TLS, _TLS_CA, _TLS_CERT, _TLS_KEY); default
	// neither.
	KafkaSecurity kafkatransport.Security
	// Tracing is where OpenTelemetry spans go (OTEL_EXPORTER_OTLP_ENDPOINT
	// and the other OTLP variables; default off).
	Tracing Tracing
}

// EnvName returns the environment variable of flag name: "kafka-brokers"
// gives "TRIBUTARY_KAFKA_BROKERS".
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ParseConfig registers the common flags on fs next to any the caller
// registered, parses args with environment fallback (see ParseFlags), and
// validates the result against need. All problems are reported together,
// each naming its variable. Call it once per FlagSet, and do not register
// the common flag names (kafka-*, topic-prefix, http-addr, data-dir,
// qdrant-addr, api-keys, log-level) yourself.
func ParseConfig(fs *flag.FlagSet, args []string, getenv func(string) string, need Need) (Config, error) {
	var brokers, keys, level string
	fs.StringVar(&brokers, "kafka-brokers", "localhost:9092", "comma-separated Kafka bootstrap addresses (host:port)")
	prefix := fs.String("topic-prefix", events.DefaultPrefix, "prefix of every topic name")
	httpAddr := fs.String("http-addr", ":8080", "listen address for HTTP, /healthz, /readyz and /metrics")
	dataDir := fs.String("data-dir", "", "directory for durable state")
	qdrant := fs.String("qdrant-addr", "localhost:6334", "host:port of Qdrant's gRPC API")
	fs.StringVar(&keys, "api-keys", "", "API keys: key:tenant:group1|group2, comma-separated")
	fs.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	var kafka kafkaFlags
	kafka.register(fs)
	if err := ParseFlags(fs, args, getenv); err != nil {
		return Config{}, err
	}
	cfg := Config{TopicPrefix: *prefix, HTTPAddr: *httpAddr, DataDir: *dataDir, QdrantAddr: *qdrant}
	var p Problems
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.KafkaBrokers = append(cfg.KafkaBrokers, b)
		}
	}
	if need&NeedKafka != 0 && len(cfg.KafkaBrokers) == 0 {
		p.Addf("kafka-brokers", "required")
	}
	for _, b := range cfg.KafkaBrokers {
		if err := checkHostPort(b, true); err != nil {
			p.Add("kafka-brokers", err)
		}
	}
	if err := events.ValidatePrefix(cfg.TopicPrefix); err != nil {
		p.Add("topic-prefix", err)
	}
	if err := checkHostPort(cfg.HTTPAddr, false); err != nil {
		p.Add("http-addr", err)
	}
	if cfg.QdrantAddr != "" {
		if err := checkHostPort(cfg.QdrantAddr, true); err != nil {
			p.Add("qdrant-addr", err)
		}
	}
	if need&NeedQdrant != 0 && cfg.QdrantAddr == "" {
		p.Addf("qdrant-addr", "required")
	}
	switch {
	case cfg.DataDir == "" && need&NeedDataDir != 0:
		p.Addf("data-dir", "required")
	case cfg.DataDir != "":
		if err := checkDataDir(cfg.DataDir); err != nil {
			p.Add("data-dir", err)
		}
	}
	set, err := apikey.Parse(keys)
	switch {
	case err != nil:
		p.Add("api-keys", err)
	case need&NeedAPIKeys != 0 && set.Len() == 0:
		p.Addf("api-keys", "required: at least one key:tenant:groups entry")
	}
	cfg.APIKeys = set
	if cfg.APIKeys == nil {
		cfg.APIKeys = &apikey.Set{}
	}
	cfg.KafkaSecurity = kafka.security(&p)
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil || !validLevel(level) {
		p.Addf("log-level", "%q is not debug, info, warn or error", level)
	}
	if cfg.Tracing, err = TracingFromEnv(getenv); err != nil {
		p.errs = append(p.errs, err)
	}
	if err := p.Err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Problems collects what is wrong with a service's settings, each problem
// naming its environment variable and flag, so that an operator sees every
// mistake in one start rather than one per restart. ParseConfig reports
// the common settings this way; a service checks its own with a Problems
// of its own after ParseConfig succeeds. The zero value is ready to use.
type Problems struct {
	errs []error
}

// Add records err as a problem with the flag flagName:
// "TRIBUTARY_FLAG_NAME (--flag-name): err".
func (p *Problems) Add(flagName string, err error) {
	p.errs = append(p.errs, fmt.Errorf("%s (--%s): %w", EnvName(flagName), flagName, err))
}

// Addf records a problem with the flag flagName described by format and
// args, as Add does.
func (p *Problems) Addf(flagName, format string, args ...any) {
	p.Add(flagName, fmt.Errorf(format, args...))
}

// Err returns nil when nothing was recorded, else one error that starts
// "invalid configuration: " and lists every problem in the order recorded,
// one a line.
func (p *Problems) Err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration: %w", errors.Join(p.errs...))
}

func validLevel(s string) bool {
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

// ParseFlags parses args into fs, falling back to environment variables
// (read with getenv) for flags not given on the command line. Each flag
// "some-name" is also registered as "TRIBUTARY_SOME_NAME" so the
// variable's name works as a flag. A bad value in a variable is an error
// that names the variable.
func ParseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	var names []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f) })
	for _, f := range names {
		env := EnvName(f.Name)
		if fs.Lookup(env) == nil && !strings.HasPrefix(f.Name, EnvPrefix) {
			fs.Var(f.Value, env, "same as --"+f.Name)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	for _, f := range names {
		env := EnvName(f.Name)
		if set[f.Name] || set[env] {
			continue
		}
		v := getenv(env)
		if v == "" {
			continue
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: invalid value %q: %w", env, v, err))
		}
	}
	return errors.Join(errs...)
}

func checkHostPort(addr string, needHost bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if needHost && host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (needHost && n == 0) {
		return fmt.Errorf("%q has an invalid port", addr)
	}
	return nil
}

func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".writable-*")
	if err != nil {
		return fmt.Errorf("%s is not writable: %w", dir, err)
	}
	name := f.Name()
	err = f.Close()
	if rerr := os.Remove(filepath.Clean(name)); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return nil
}

// kafkaFlags are the Kafka client's SASL and TLS settings.
type kafkaFlags struct {
	mechanism, username, password string
	passwordFile                  string
	tls                           bool
	ca, cert, key                 string
}

func (k *kafkaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.mechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)")
	fs.StringVar(&k.username, "kafka-username", "", "SASL username")
	fs.StringVar(&k.password, "kafka-password", "", "SASL password (prefer the environment variable to the flag)")
	fs.StringVar(&k.passwordFile, "kafka-password-file", "", "file holding the SASL password (a mounted secret; one trailing newline is ignored)")
	fs.BoolVar(&k.tls, "kafka-tls", false, "connect to the brokers over TLS (implied by the other kafka-tls settings)")
	fs.StringVar(&k.ca, "kafka-tls-ca", "", "PEM file of the CAs that sign the brokers' certificates (empty: the system's)")
	fs.StringVar(&k.cert, "kafka-tls-cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&k.key, "kafka-tls-key", "", "PEM key of the client certificate")
}

// security returns the settings as a kafkatransport.Security, recording
// what is wrong in p.
func (k kafkaFlags) security(p *Problems) kafkatransport.Security {
	var sec kafkatransport.Security
	if k.passwordFile != "" {
		switch b, err := os.ReadFile(k.passwordFile); {
		case k.password != "":
			p.Addf("kafka-password-file", "set either the password or its file, not both")
		case err != nil:
			p.Add("kafka-password-file", err)
		default:
			k.password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		}
	}
	m, err := kafkatransport.NewSASL(k.mechanism, k.username, k.password)
	switch {
	case err != nil:
		p.Add("kafka-sasl-mechanism", err)
	case m == nil && (k.username != "" || k.password != ""):
		p.Addf("kafka-sasl-mechanism", "required with a username or password")
	case strings.EqualFold(k.mechanism, kafkatransport.MechanismPlain) && !k.tls && k.ca == "" && k.cert == "":
		// PLAIN sends the password as it is: only over TLS.
		p.Addf("kafka-sasl-mechanism", "PLAIN needs TLS (set TRIBUTARY_KAFKA_TLS)")
	}
	sec.SASL = m
	if k.tls || k.ca != "" || k.cert != "" || k.key != "" {
		cfg, err := ClientTLS(k.ca, k.cert, k.key)
		if err != nil {
			p.Add("kafka-tls", err)
		}
		sec.TLS = cfg
	}
	return sec
}
