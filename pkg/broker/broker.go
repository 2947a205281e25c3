// Package broker runs a standalone Kafka-protocol broker on franz-go's kfake:
// real Kafka clients (kafka-go, franz-go, librdkafka, kcat) talk to it over
// TCP. It backs "tributary broker" for development, documentation and
// container tests; production uses Apache Kafka, Redpanda or MSK.
//
//	b, err := broker.Start(broker.Config{Listen: "0.0.0.0:9092", Advertise: "broker:9092", DataDir: "/data"})
//	if err != nil { ... }
//	defer b.Close()
//	fmt.Println(b.Addr()) // "broker:9092"
//
// With a DataDir, topics, messages and committed group offsets are written
// to disk and survive a restart. Like Kafka's default
// (log.flush.interval.messages unset) a produce is acknowledged once it is
// written to the file, in the OS page cache: a killed broker process loses
// nothing, a machine crash may lose the last moments. Fsync makes every
// batch reach the disk before its acknowledgement, at several times the
// produce latency.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures a Broker.
type Config struct {
	// Listen is the TCP address to listen on, e.g. ":9092", "0.0.0.0:9092"
	// or "127.0.0.1:0" (a free port).
	Listen string
	// Advertise is the address the broker tells clients to connect to, as
	// "host:port" or "host" (the listening port is used). It must reach
	// the broker from the clients: in Docker, the container's network
	// alias ("broker:9092"). Default: Listen's host, or 127.0.0.1 when
	// Listen has no host or an unspecified one (0.0.0.0, ::).
	Advertise string
	// DataDir makes the broker durable: state is loaded from and written
	// to it. Empty keeps everything in memory.
	DataDir string
	// Fsync syncs every written batch to disk before acknowledging it
	// (with DataDir). Off, writes are synced on segment roll and shutdown.
	Fsync bool
	// Partitions is the partition count of auto-created topics (default 3).
	Partitions int
	// Users turn on SASL authentication (SCRAM-SHA-256 and -512, and
	// PLAIN with TLS) and ACLs: every client must log in as one of them,
	// a superuser may do anything, any other user only what its Access
	// allows. None: anyone who reaches the port may do anything.
	Users []User
	// TLS, when set, makes the listener serve TLS only.
	TLS *tls.Config
}

// User is a principal of the broker.
type User struct {
	Name, Password string
	// Superuser bypasses the ACLs (the administrator, tributary dev's
	// topic provisioning).
	Superuser bool
	// Access is what a user that is not a superuser may do.
	Access Access
}

// Broker is a running single-node cluster.
type Broker struct {
	c      *kfake.Cluster
	addr   string
	listen string
}

// Start listens and starts serving. Topics are created automatically on
// first use, and explicitly with CreateTopics.
func Start(cfg Config) (*Broker, error) {
	if cfg.Listen == "" {
		return nil, errors.New("broker: no listen address")
	}
	lhost, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker: listen address %q: %w", cfg.Listen, err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker: listen: %w", err)
	}
	_, lport, _ := net.SplitHostPort(ln.Addr().String())
	adv, err := advertised(cfg.Advertise, lhost, lport)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	partitions := cfg.Partitions
	if partitions <= 0 {
		partitions = 3
	}
	used := false
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(partitions),
		// kfake listens on 127.0.0.1 and advertises its listener's
		// address; hand it ours, reporting the advertised address.
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			if used {
				return nil, errors.New("broker: one listener only")
			}
			used = true
			return &advertisedListener{Listener: ln, addr: adv}, nil
		}),
	}
	opts = append(opts, authOpts(cfg)...)
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.Fsync {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("broker: start: %w", err)
	}
	return &Broker{c: c, addr: adv.String(), listen: ln.Addr().String()}, nil
}

// Addr returns the advertised address, the one clients bootstrap from.
func (b *Broker) Addr() string { return b.addr }

// ListenAddr returns the address the broker listens on.
func (b *Broker) ListenAddr() string { return b.listen }

// Close stops the broker, persisting its state when it has a DataDir.
func (b *Broker) Close() { b.c.Close() }

// Run starts a broker, calls ready with it, serves until ctx is done, then
// closes it.
func Run(ctx context.Context, cfg Config, ready func(b *Broker)) error {
	b, err := Start(cfg)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(b)
	}
	<-ctx.Done()
	b.Close()
	return nil
}

func advertised(adv, lhost, lport string) (hostPort, error) {
	if adv == "" {
		h := lhost
		if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
			h = "127.0.0.1"
		}
		return hostPort{h, lport}, nil
	}
	h, p, err := net.SplitHostPort(adv)
	if err != nil {
		// A bare host (or IPv6 literal) keeps the listening port.
		h, p = adv, lport
	}
	if n, err := strconv.Atoi(p); h == "" || err != nil || n <= 0 || n > 65535 {
		return hostPort{}, fmt.Errorf("broker: advertise address %q: want host or host:port", adv)
	}
	return hostPort{h, p}, nil
}

type hostPort struct{ host, port string }

func (hostPort) Network() string  { return "tcp" }
func (a hostPort) String() string { return net.JoinHostPort(a.host, a.port) }

// advertisedListener reports the advertised address as its own, which is
// what kfake puts in metadata and coordinator responses.
type advertisedListener struct {
	net.Listener
	addr hostPort
}

func (l *advertisedListener) Addr() net.Addr { return l.addr }

// authOpts returns kfake's options for cfg's users and TLS.
func authOpts(cfg Config) []kfake.Opt {
	var opts []kfake.Opt
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS))
	}
	if len(cfg.Users) == 0 {
		return opts
	}
	opts = append(opts, kfake.EnableSASL(), kfake.EnableACLs())
	methods := []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}
	if cfg.TLS != nil {
		// PLAIN sends the password itself: only inside TLS.
		methods = append(methods, "PLAIN")
	}
	for _, u := range cfg.Users {
		for i, m := range methods {
			switch {
			case u.Superuser:
				opts = append(opts, kfake.Superuser(m, u.Name, u.Password))
			case i == 0:
				opts = append(opts, kfake.User(m, u.Name, u.Password, u.Access.acls()...))
			default:
				opts = append(opts, kfake.User(m, u.Name, u.Password))
			}
		}
	}
	return opts
}
