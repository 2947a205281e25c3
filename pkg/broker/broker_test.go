package broker

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestAdvertised(t *testing.T) {
	tests := []struct {
		adv, lhost, want string
		ok               bool
	}{
		{"", "", "127.0.0.1:9092", true},
		{"", "0.0.0.0", "127.0.0.1:9092", true},
		{"", "::", "127.0.0.1:9092", true},
		{"", "10.1.2.3", "10.1.2.3:9092", true},
		{"broker", "0.0.0.0", "broker:9092", true},
		{"broker:19092", "0.0.0.0", "broker:19092", true},
		{"::1", "", "[::1]:9092", true},
		{"broker:0", "", "", false},
		{"broker:x", "", "", false},
		{":9092", "", "", false},
	}
	for _, tt := range tests {
		got, err := advertised(tt.adv, tt.lhost, "9092")
		if (err == nil) != tt.ok || (tt.ok && got.String() != tt.want) {
			t.Errorf("advertised(%q, %q) = %v, %v; want %q ok=%v", tt.adv, tt.lhost, got, err, tt.want, tt.ok)
		}
	}
}

// TestAdvertiseReachesClients starts a broker on every interface that
// advertises "localhost": a client bootstrapping from the listen address
// must be sent to, and work through, the advertised one.
func TestAdvertiseReachesClients(t *testing.T) {
	b, err := Start(Config{Listen: "127.0.0.1:0", Advertise: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !strings.HasPrefix(b.Addr(), "localhost:") {
		t.Fatalf("Addr() = %q, want localhost:<port>", b.Addr())
	}
	_, port, _ := net.SplitHostPort(b.ListenAddr())
	if b.Addr() != "localhost:"+port {
		t.Errorf("Addr() = %q, listening on %q", b.Addr(), b.ListenAddr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(b.ListenAddr())}
	meta, err := cl.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Brokers) != 1 || net.JoinHostPort(meta.Brokers[0].Host, strconv.Itoa(meta.Brokers[0].Port)) != b.Addr() {
		t.Errorf("metadata brokers = %+v, want %s", meta.Brokers, b.Addr())
	}
	// Auto topic creation: a write to a new topic succeeds.
	w := &kafka.Writer{Addr: kafka.TCP(b.ListenAddr()), AllowAutoTopicCreation: true, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Topic: "auto", Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("write to auto-created topic: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	for _, cfg := range []Config{{}, {Listen: "nope"}, {Listen: "127.0.0.1:0", Advertise: "x:y"}} {
		if b, err := Start(cfg); err == nil {
			b.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}
