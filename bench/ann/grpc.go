package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qdrant/go-client/qdrant"

	"github.com/tributary-rag/tributary/pkg/vectordb"
)

type grpcCase struct {
	Name    string  `json:"name"`
	Clients int     `json:"clients"`
	Recall  float64 `json:"recall"`
	QPS     float64 `json:"qps"`
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
}

type grpcReport struct {
	Target      string     `json:"target"`
	N           int        `json:"n"`
	UpsertRate  float64    `json:"upsert_rate"`
	Ef          int        `json:"ef"`
	Runs        int        `json:"runs"`
	Cases       []grpcCase `json:"cases"`
	GroundTruth string     `json:"ground_truth"`
}

// runGRPC measures queries through Qdrant's gRPC API with the official Go
// client: against the embedded store started in process, or against any
// server given with -addr (a real Qdrant included).
func runGRPC(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("grpc", flag.ContinueOnError)
	dir := fs.String("dir", "out/ann", "dataset directory (from gen)")
	addr := fs.String("addr", "", "host:port of a Qdrant gRPC API; empty starts the embedded store in process")
	n := fs.Int("n", 0, "points to upsert (0: all)")
	ef := fs.Int("ef", 64, "hnsw_ef of each query")
	runs := fs.Int("runs", 3, "query passes")
	clients := fs.Int("clients", 16, "concurrent clients")
	out := fs.String("out", "", "JSON output (default DIR/grpc.json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	base, total, dim, err := readNPYFloat32(filepath.Join(*dir, "base.npy"))
	if err != nil {
		return err
	}
	queries, nq, _, err := readNPYFloat32(filepath.Join(*dir, "queries.npy"))
	if err != nil {
		return err
	}
	if *n <= 0 || *n > total {
		*n = total
	}
	target := *addr
	if target == "" {
		tmp, err := os.MkdirTemp("", "ann-grpc-")
		if err != nil {
			return fmt.Errorf("temp dir: %w", err)
		}
		defer os.RemoveAll(tmp)
		store, err := vectordb.Open(tmp, vectordb.WithSearchEf(*ef))
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		defer store.Close()
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- vectordb.Serve(sctx, store, lis, nil, 5*time.Second) }()
		defer func() { cancel(); <-done }()
		target = lis.Addr().String()
	}
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return fmt.Errorf("parse addr: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("parse port: %w", err)
	}
	// Keepalive off: on a starved machine a missed ping ACK would abort a long
	// upsert batch.
	client, err := qdrant.NewClient(&qdrant.Config{Host: host, Port: port, PoolSize: 4, KeepAliveTime: -1})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer client.Close()
	const coll = "ann_bench"
	_ = client.DeleteCollection(ctx, coll)
	if err := client.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: coll,
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: uint64(dim), Distance: qdrant.Distance_Cosine,
			HnswConfig: &qdrant.HnswConfigDiff{M: ptr[uint64](16), EfConstruct: ptr[uint64](200)}})}); err != nil {
		return fmt.Errorf("create collection: %w", err)
	}
	for _, field := range []string{"m100", "m2"} {
		if _, err := client.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{CollectionName: coll, FieldName: field,
			FieldType: qdrant.FieldType_FieldTypeInteger.Enum(), Wait: ptr(true)}); err != nil {
			return fmt.Errorf("create field index: %w", err)
		}
	}
	start := time.Now()
	const batch = 500
	for lo := 0; lo < *n; lo += batch {
		pts := make([]*qdrant.PointStruct, 0, batch)
		for i := lo; i < min(lo+batch, *n); i++ {
			pts = append(pts, &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)),
				Vectors: qdrant.NewVectorsDense(base[i*dim : (i+1)*dim]),
				Payload: qdrant.NewValueMap(map[string]any{"m100": int64(i % 100), "m2": int64(i % 2)})})
		}
		if _, err := client.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: coll, Wait: ptr(true), Points: pts}); err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
	}
	rep := grpcReport{Target: "embedded store (in process, loopback TCP)", N: *n, Ef: *ef, Runs: *runs}
	if *addr != "" {
		rep.Target = *addr
	}
	rep.UpsertRate = float64(*n) / time.Since(start).Seconds()
	fmt.Fprintf(stdout, "grpc: upserted %d points in %.1fs (%.0f points/s, wait=true, batches of %d)\n", *n, time.Since(start).Seconds(), rep.UpsertRate, batch)
	filt := map[string]*qdrant.Filter{
		"ann":  nil,
		"f50":  {Must: []*qdrant.Condition{qdrant.NewMatchInt("m2", 0)}},
		"f1":   {Must: []*qdrant.Condition{qdrant.NewMatchInt("m100", 0)}},
		"true": nil,
	}
	query := func(i int, f *qdrant.Filter, exact bool) ([]uint32, error) {
		params := &qdrant.SearchParams{HnswEf: ptr(uint64(*ef))}
		if exact {
			params = &qdrant.SearchParams{Exact: ptr(true)}
		}
		res, err := client.Query(ctx, &qdrant.QueryPoints{CollectionName: coll, Query: qdrant.NewQueryDense(queries[i*dim : (i+1)*dim]),
			Filter: f, Limit: ptr[uint64](10), Params: params})
		if err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		ids := make([]uint32, len(res))
		for j, p := range res {
			ids[j] = uint32(p.GetId().GetNum())
		}
		return ids, nil
	}
	// Ground truth: the files from gen when all points are loaded, else the
	// server's own exact search.
	gts := map[string][][]uint32{}
	if *n == total {
		rep.GroundTruth = "exact top 10 from gen"
		for _, name := range []string{"all", "f1", "f50"} {
			g, rows, cols, err := readNPYInt32(filepath.Join(*dir, "gt_"+name+".npy"))
			if err != nil {
				return err
			}
			gts[name] = make([][]uint32, rows)
			for i := range rows {
				for _, v := range g[i*cols : (i+1)*cols] {
					gts[name][i] = append(gts[name][i], uint32(v))
				}
			}
		}
	} else {
		rep.GroundTruth = "server exact search (params.exact)"
		for name, key := range map[string]string{"all": "ann", "f1": "f1", "f50": "f50"} {
			gts[name] = make([][]uint32, nq)
			for i := range nq {
				if gts[name][i], err = query(i, filt[key], true); err != nil {
					return err
				}
			}
		}
	}
	gtOf := map[string]string{"ann": "all", "f1": "f1", "f50": "f50"}
	recall := func(got, want []uint32) float64 {
		hit := 0
		for _, w := range want {
			for _, g := range got {
				if g == w {
					hit++
					break
				}
			}
		}
		if len(want) == 0 {
			return 1
		}
		return float64(hit) / float64(len(want))
	}
	for r := range *runs {
		for _, c := range []struct {
			name    string
			clients int
		}{{"ann", 1}, {"ann", *clients}, {"f1", 1}, {"f50", 1}} {
			total := nq
			if c.clients > 1 {
				total = max(c.clients*nq/4, nq)
			}
			lat := make([]time.Duration, total)
			recs := make([]float64, total)
			var next atomic.Int64
			var wg sync.WaitGroup
			var qerr atomic.Pointer[error]
			t0 := time.Now()
			for range c.clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1) - 1)
						if i >= total {
							return
						}
						s := time.Now()
						ids, err := query(i%nq, filt[c.name], false)
						lat[i] = time.Since(s)
						if err != nil {
							qerr.Store(&err)
							return
						}
						recs[i] = recall(ids, gts[gtOf[c.name]][i%nq])
					}
				}()
			}
			wg.Wait()
			if e := qerr.Load(); e != nil {
				return *e
			}
			el := time.Since(t0)
			p := summarize(lat)
			var rec float64
			for _, x := range recs {
				rec += x
			}
			gc := grpcCase{Name: c.name, Clients: c.clients, Recall: rec / float64(total), QPS: float64(total) / el.Seconds(), P50us: p.p50, P99us: p.p99}
			rep.Cases = append(rep.Cases, gc)
			fmt.Fprintf(stdout, "grpc run %d %s, %d clients: recall %.4f, %.0f qps, p50 %.1fµs, p99 %.1fµs\n", r+1, c.name, c.clients, gc.Recall, gc.QPS, gc.P50us, gc.P99us)
		}
	}
	path := *out
	if path == "" {
		path = filepath.Join(*dir, "grpc.json")
	}
	b, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
