package vectordb

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// serveWith serves a fresh store with opts and returns its host and port.
func serveWith(t *testing.T, a Access, tlsCfg *tls.Config) (string, int) {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, s, lis, nil, time.Second, a.ServerOptions(tlsCfg)...) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = s.Close()
	})
	host, port, _ := net.SplitHostPort(lis.Addr().String())
	p, _ := strconv.Atoi(port)
	return host, p
}

func client(t *testing.T, host string, port int, key string, tlsCfg *tls.Config) *qdrant.Client {
	t.Helper()
	c, err := qdrant.NewClient(&qdrant.Config{Host: host, Port: port, APIKey: key, UseTLS: tlsCfg != nil, TLSConfig: tlsCfg, SkipCompatibilityCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func code(err error) codes.Code { return status.Code(err) }

// TestAPIKeys checks the keys as Qdrant's clients use them: no key or a
// wrong one is Unauthenticated, the read-only key reads but may not write,
// the read-write key does both.
func TestAPIKeys(t *testing.T) {
	host, port := serveWith(t, Access{Keys: []string{"rw-secret-1"}, ReadOnlyKeys: []string{"ro-secret-2"}}, nil)
	ctx := context.Background()
	rw, ro := client(t, host, port, "rw-secret-1", nil), client(t, host, port, "ro-secret-2", nil)
	for name, c := range map[string]*qdrant.Client{"no key": client(t, host, port, "", nil), "wrong key": client(t, host, port, "rw-secret-", nil)} {
		if _, err := c.ListCollections(ctx); code(err) != codes.Unauthenticated {
			t.Errorf("%s: ListCollections = %v, want Unauthenticated", name, err)
		}
	}
	create := &qdrant.CreateCollection{CollectionName: "c", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Cosine})}
	if err := ro.CreateCollection(ctx, create); code(err) != codes.PermissionDenied {
		t.Fatalf("read-only CreateCollection = %v, want PermissionDenied", err)
	}
	if err := rw.CreateCollection(ctx, create); err != nil {
		t.Fatalf("read-write CreateCollection: %v", err)
	}
	wait := true
	up := &qdrant.UpsertPoints{CollectionName: "c", Wait: &wait, Points: []*qdrant.PointStruct{{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectors(1, 0)}}}
	if _, err := ro.Upsert(ctx, up); code(err) != codes.PermissionDenied {
		t.Errorf("read-only Upsert = %v, want PermissionDenied", err)
	}
	if _, err := rw.Upsert(ctx, up); err != nil {
		t.Fatalf("read-write Upsert: %v", err)
	}
	hits, err := ro.Query(ctx, &qdrant.QueryPoints{CollectionName: "c", Query: qdrant.NewQuery(1, 0)})
	if err != nil || len(hits) != 1 {
		t.Errorf("read-only Query = %v, %v; want the point", hits, err)
	}
	if _, err := ro.Delete(ctx, &qdrant.DeletePoints{CollectionName: "c", Points: qdrant.NewPointsSelector(qdrant.NewIDNum(1))}); code(err) != codes.PermissionDenied {
		t.Errorf("read-only Delete = %v, want PermissionDenied", err)
	}
	if err := ro.DeleteCollection(ctx, "c"); code(err) != codes.PermissionDenied {
		t.Errorf("read-only DeleteCollection = %v, want PermissionDenied", err)
	}
}

func TestReadOnlyMethods(t *testing.T) {
	for method, want := range map[string]bool{
		"/qdrant.Points/Search": true, "/qdrant.Points/QueryGroups": true, "/qdrant.Points/Scroll": true,
		"/qdrant.Points/Upsert": false, "/qdrant.Points/SetPayload": false, "/qdrant.Points/UpdateBatch": false,
		"/qdrant.Collections/List": true, "/qdrant.Collections/Create": false, "/qdrant.Collections/UpdateAliases": false,
		"/qdrant.Snapshots/List": true, "/qdrant.Snapshots/Create": false, "/qdrant.Qdrant/HealthCheck": true,
		"/qdrant.Unknown/Get": false,
	} {
		if got := readOnly(method); got != want {
			t.Errorf("readOnly(%s) = %v, want %v", method, got, want)
		}
	}
}

// TestTLS serves TLS and checks that the official client connects with
// the CA and that a plaintext client does not.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	host, port := serveWith(t, Access{Keys: []string{"k-123456"}}, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client(t, host, port, "k-123456", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}).ListCollections(ctx); err != nil {
		t.Errorf("TLS client: %v", err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	defer pcancel()
	if _, err := client(t, host, port, "k-123456", nil).ListCollections(pctx); err == nil {
		t.Error("a plaintext client was served by a TLS-only store")
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vectordb test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, pool
}
