package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/broker"
	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// startWithUsers starts a broker whose principals are admin and every
// service, with generated passwords.
func startWithUsers(t *testing.T, topics events.Topics) (*broker.Broker, []broker.User) {
	t.Helper()
	users, err := broker.LoadUsers(t.TempDir()+"/users", topics, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, users
}

func login(t *testing.T, users []broker.User, name, mechanism string) kafkatransport.Security {
	t.Helper()
	pass, ok := broker.Password(users, name)
	if !ok {
		t.Fatalf("no user %s", name)
	}
	m, err := kafkatransport.NewSASL(mechanism, name, pass)
	if err != nil {
		t.Fatal(err)
	}
	return kafkatransport.Security{SASL: m}
}

func publish(ctx context.Context, brokers []string, sec kafkatransport.Security, topic string) error {
	// One attempt: a refusal is final, and unknown topics are retried.
	p := kafkatransport.NewPublisher(brokers, kafkatransport.PublisherSecurity(sec),
		kafkatransport.PublisherWriter(func(w *kafka.Writer) { w.MaxAttempts = 1 }))
	defer p.Close()
	return p.WriteMessages(ctx, kafka.Message{Topic: topic, Key: []byte("k"), Value: []byte("{}")})
}

// TestServicesHaveLeastPrivilege checks the ACL table where it matters to
// an attacker holding one service's credentials: it may write what the
// service writes and nothing else, and nobody gets in without a password.
func TestServicesHaveLeastPrivilege(t *testing.T) {
	topics := events.NewTopics("acl")
	b, users := startWithUsers(t, topics)
	brokers := []string{b.Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := login(t, users, broker.AdminUser, kafkatransport.MechanismSCRAMSHA512)
	if err := kafkatransport.EnsureTopics(ctx, brokers, admin, kafkatransport.TopicSpecs(1, 1, topics.All()...)...); err != nil {
		t.Fatalf("admin creates the topics: %v", err)
	}

	tests := []struct {
		user, topic string
		allowed     bool
	}{
		{"edge", topics.QueriesReceived, true},
		{"edge", topics.AnswersModerated, false}, // only moderate writes answers
		{"edge", topics.Chunks, false},
		{"ingest", topics.Chunks, true},
		{"ingest", events.DLQ(topics.IngestRequests), true},
		{"generate", topics.Chunks, false}, // a forged chunk
		{"generate", topics.AnswersGenerated, true},
		{"embed", topics.Documents, false},
		{"audit", topics.Documents, false}, // the audit only reads
		{"retrieve", topics.Documents, true},
	}
	for _, tt := range tests {
		for _, mech := range []string{kafkatransport.MechanismSCRAMSHA256, kafkatransport.MechanismSCRAMSHA512} {
			err := publish(ctx, brokers, login(t, users, tt.user, mech), tt.topic)
			if tt.allowed && err != nil {
				t.Errorf("%s (%s) writing %s: %v, want allowed", tt.user, mech, tt.topic, err)
			}
			if !tt.allowed && !refused(err) {
				t.Errorf("%s (%s) writing %s: %v, want it refused", tt.user, mech, tt.topic, err)
			}
		}
	}

	// The service's own consumer group reads; another service's cannot.
	read := func(user, group string, wait time.Duration) error {
		rctx, rcancel := context.WithTimeout(ctx, wait)
		defer rcancel()
		rc := kafka.ReaderConfig{Brokers: brokers, GroupID: group, Topic: topics.QueriesReceived, StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond}
		login(t, users, user, kafkatransport.MechanismSCRAMSHA512).ReaderConfig(&rc)
		r := kafka.NewReader(rc)
		defer r.Close()
		_, err := r.FetchMessage(rctx)
		return err
	}
	if err := read("moderate", "moderate", 15*time.Second); err != nil {
		t.Errorf("moderate reading queries.received in its group: %v", err)
	}
	// Refused reads are retried by the reader until its context ends.
	if err := read("edge", "edge-x.answers", 2*time.Second); err == nil {
		t.Error("edge read queries.received, which it may only write")
	}

	// No credentials, or the wrong password: refused.
	if err := publish(ctx, brokers, kafkatransport.Security{}, topics.QueriesReceived); err == nil {
		t.Error("a client without SASL wrote a topic")
	}
	bad, _ := kafkatransport.NewSASL(kafkatransport.MechanismSCRAMSHA512, "edge", "not-the-password")
	if err := publish(ctx, brokers, kafkatransport.Security{SASL: bad}, topics.QueriesReceived); err == nil {
		t.Error("a wrong password wrote a topic")
	}
}

// refused reports whether err is the broker refusing a write: not
// authorized, or (as Kafka answers a principal that may not even describe
// the topic) no such topic.
func refused(err error) bool {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil && !refused(e) {
				return false
			}
		}
		return len(we) > 0
	}
	return errors.Is(err, kafka.TopicAuthorizationFailed) || errors.Is(err, kafka.UnknownTopicOrPartition)
}

func TestParseUsers(t *testing.T) {
	topics := events.NewTopics("")
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"admin and a service", "# c\nadmin:aaaaaaaa\n\nedge:bbbbbbbb\n", true},
		{"unknown principal", "mallory:aaaaaaaa\n", false},
		{"short password", "edge:short\n", false},
		{"no password", "edge\n", false},
		{"twice", "edge:aaaaaaaa\nedge:bbbbbbbb\n", false},
		{"empty", "# nothing\n", false},
	}
	for _, tt := range tests {
		users, err := broker.ParseUsers([]byte(tt.in), topics)
		if (err == nil) != tt.ok {
			t.Errorf("%s: ParseUsers = %v, %v; want ok=%v", tt.name, users, err, tt.ok)
		}
	}
}

// TestPlainOverTLS logs in with PLAIN, which the broker offers only
// inside TLS, through the same TLS settings the services read.
func TestPlainOverTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeCert(t, dir)
	srvTLS, err := daemon.ServerTLS(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	topics := events.NewTopics("tls")
	users, err := broker.LoadUsers(dir+"/users", topics, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", Users: users, TLS: srvTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cliTLS, err := daemon.ClientTLS(caFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	admin := login(t, users, broker.AdminUser, kafkatransport.MechanismSCRAMSHA256)
	admin.TLS = cliTLS
	if err := kafkatransport.EnsureTopics(ctx, []string{b.Addr()}, admin, kafkatransport.TopicSpecs(1, 1, topics.Chunks)...); err != nil {
		t.Fatal(err)
	}
	ingest := login(t, users, "ingest", kafkatransport.MechanismPlain)
	ingest.TLS = cliTLS
	if err := publish(ctx, []string{b.Addr()}, ingest, topics.Chunks); err != nil {
		t.Errorf("PLAIN over TLS: %v", err)
	}
	ingest.TLS = nil
	if err := publish(ctx, []string{b.Addr()}, ingest, topics.Chunks); err == nil {
		t.Error("a plaintext client wrote to a TLS-only broker")
	}
}

// writeCert writes a self-signed CA-and-server certificate for 127.0.0.1
// and returns the CA, certificate and key files.
func writeCert(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tributary test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = dir+"/cert.pem", dir+"/key.pem"
	for file, block := range map[string]*pem.Block{cert: {Type: "CERTIFICATE", Bytes: der}, key: {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, cert, key
}

func TestAccessCovers(t *testing.T) {
	topics := events.NewTopics("")
	edge := broker.ServiceAccess(topics)["edge"]
	if err := edge.Covers([]string{topics.AnswersModerated}, []string{topics.QueriesReceived}); err != nil {
		t.Errorf("edge's own topics: %v", err)
	}
	err := edge.Covers([]string{topics.Chunks}, []string{topics.AnswersModerated})
	if err == nil || !strings.Contains(err.Error(), "read "+topics.Chunks) || !strings.Contains(err.Error(), "write "+topics.AnswersModerated) {
		t.Errorf("edge reading chunks and writing answers: %v, want both named", err)
	}
}
