package vectordb

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// apiKeyHeader is the gRPC metadata Qdrant reads its API key from; the
// official clients send it.
const apiKeyHeader = "api-key"

// Access is who may call the store, as Qdrant's service.api_key and
// service.read_only_api_key configure it: a read-write key may call every
// method, a read-only key only those that change nothing. No keys: anyone
// who reaches the port may do anything.
type Access struct {
	Keys, ReadOnlyKeys []string
}

// ServerOptions returns the gRPC server options that enforce a (none when
// it has no keys) and serve TLS with tlsCfg (when not nil), for NewServer
// and Serve.
func (a Access) ServerOptions(tlsCfg *tls.Config) []grpc.ServerOption {
	var opts []grpc.ServerOption
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	if len(a.Keys) == 0 && len(a.ReadOnlyKeys) == 0 {
		return opts
	}
	g := &guard{rw: digests(a.Keys), ro: digests(a.ReadOnlyKeys)}
	return append(opts, grpc.ChainUnaryInterceptor(g.unary), grpc.ChainStreamInterceptor(g.stream))
}

type guard struct{ rw, ro [][32]byte }

func digests(keys []string) [][32]byte {
	var d [][32]byte
	for _, k := range keys {
		if k != "" {
			d = append(d, sha256.Sum256([]byte(k)))
		}
	}
	return d
}

// check admits a call to method carrying ctx's key. Keys are compared as
// SHA-256 digests in constant time, against every key.
func (g *guard) check(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	key := ""
	if v := md.Get(apiKeyHeader); len(v) > 0 {
		key = v[0]
	} else if v := md.Get("authorization"); len(v) > 0 {
		key, _ = strings.CutPrefix(v[0], "Bearer ")
	}
	sum := sha256.Sum256([]byte(key))
	rw, ro := 0, 0
	for _, k := range g.rw {
		rw |= subtle.ConstantTimeCompare(sum[:], k[:])
	}
	for _, k := range g.ro {
		ro |= subtle.ConstantTimeCompare(sum[:], k[:])
	}
	switch {
	case key != "" && rw == 1:
		return nil
	case key != "" && ro == 1:
		if readOnly(method) {
			return nil
		}
		return status.Errorf(codes.PermissionDenied, "the read-only API key may not call %s", method)
	}
	return status.Error(codes.Unauthenticated, "Must provide an API key or an Authorization bearer token")
}

func (g *guard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := g.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (g *guard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := g.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}

// readOnly reports whether method changes nothing: what Qdrant's
// read-only key may call.
func readOnly(method string) bool {
	service, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	switch service {
	case "qdrant.Qdrant":
		return name == "HealthCheck"
	case "qdrant.Collections":
		switch name {
		case "Get", "List", "CollectionExists", "ListAliases", "ListCollectionAliases", "CollectionClusterInfo", "ListShardKeys":
			return true
		}
	case "qdrant.Points":
		switch name {
		case "Get", "Scroll", "Count", "Facet":
			return true
		}
		for _, p := range []string{"Search", "Query", "Recommend", "Discover"} {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
	case "qdrant.Snapshots":
		return name == "List" || name == "ListFull"
	}
	return false
}
