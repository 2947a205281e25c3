package vectordb

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tributary-rag/tributary/pkg/vectordb/wal"
)

// replayMore applies the record types added after the first WAL version.
func (s *Store) replayMore(r wal.Record) error {
	switch r.Type {
	case opUpdateCollection:
		var req qdrant.UpdateCollection
		c, err := s.decodeLogged(r.Data, &req, "update collection")
		if err != nil {
			return err
		}
		if build := c.applyUpdate(&req); build != nil {
			build()
		}
	case opAliases:
		var req qdrant.ChangeAliases
		if err := proto.Unmarshal(r.Data, &req); err != nil {
			return fmt.Errorf("decode aliases: %w", err)
		}
		next, err := applyAliasActions(s.aliases, s.colls, req.GetActions())
		if err != nil {
			return err
		}
		s.aliases = next
	case opCreateShardKey, opDeleteShardKey:
		var req qdrant.CreateShardKeyRequest // DeleteShardKeyRequest has the same wire form
		c, err := s.decodeLogged(r.Data, &req, "shard key")
		if err != nil {
			return err
		}
		k := req.GetRequest().GetShardKey()
		if r.Type == opCreateShardKey {
			c.addShardKey(k)
		} else {
			c.dropShardKey(shardKeyString(k))
		}
	case opDeletePayload:
		var req qdrant.DeletePayloadPoints
		c, err := s.decodeLogged(r.Data, &req, "delete payload")
		if err != nil {
			return err
		}
		ids, err := parseIDs(req.GetPointsSelector().GetPoints().GetIds())
		if err != nil {
			return err
		}
		paths, err := parsePaths(req.GetKeys())
		if err != nil {
			return err
		}
		c.applyDeletePayload(ids, paths)
	}
	return nil
}

// UpdateCollection changes a collection's optimizer, HNSW, payload storage,
// sparse modifier and metadata settings. HNSW m and ef_construct apply to
// graphs built afterwards (a rebuild or a space that reaches the threshold).
func (s *Store) UpdateCollection(ctx context.Context, req *qdrant.UpdateCollection) error {
	c, err := s.collection(req.GetCollectionName())
	if err != nil {
		return err
	}
	if _, _, err := parseQuantizationDiff(req.GetQuantizationConfig()); err != nil {
		return err
	}
	if req.GetStrictModeConfig() != nil {
		return unimplementedf("strict mode")
	}
	for name, p := range req.GetVectorsConfig().GetParamsMap().GetMap() {
		if _, ok := c.dims[name]; !ok {
			// A sparse vector too: it has no quantization or HNSW settings.
			return invalidf("Not existing vector name error: %s", name)
		}
		if _, _, err := parseQuantizationDiff(p.GetQuantizationConfig()); err != nil {
			return err
		}
	}
	if p := req.GetVectorsConfig().GetParams(); p != nil {
		if !c.unnamed {
			return invalidf("Not existing vector name error: ")
		}
		if _, _, err := parseQuantizationDiff(p.GetQuantizationConfig()); err != nil {
			return err
		}
	}
	for name := range req.GetSparseVectorsConfig().GetMap() {
		if !c.sparseOK[name] {
			return invalidf("Not existing vector name error: %s", name)
		}
	}
	rec := proto.Clone(req).(*qdrant.UpdateCollection)
	rec.CollectionName = c.name
	rec.Timeout = nil
	data, err := proto.Marshal(rec)
	if err != nil {
		return internalf("encode update collection: %v", err)
	}
	_, err = s.write(ctx, c, opUpdateCollection, true, func() ([]byte, func() func(), error) {
		return data, func() func() { return c.applyUpdate(rec) }, nil
	})
	return err
}

// applyUpdate merges an update into the collection's configuration. Caller
// holds c.mu for writing. c.create is replaced, never mutated, so readers
// holding an older pointer are unaffected. A quantization change drops the
// affected graphs; the returned function, when not nil, rebuilds them and
// runs after the lock is released (searches are exact meanwhile).
func (c *collection) applyUpdate(req *qdrant.UpdateCollection) func() {
	next := proto.Clone(c.create).(*qdrant.CreateCollection)
	if o := req.GetOptimizersConfig(); o != nil {
		if next.OptimizersConfig == nil {
			next.OptimizersConfig = &qdrant.OptimizersConfigDiff{}
		}
		proto.Merge(next.OptimizersConfig, o)
	}
	if h := req.GetHnswConfig(); h != nil {
		if next.HnswConfig == nil {
			next.HnswConfig = &qdrant.HnswConfigDiff{}
		}
		proto.Merge(next.HnswConfig, h)
	}
	if p := req.GetParams(); p != nil && p.OnDiskPayload != nil {
		next.OnDiskPayload = p.OnDiskPayload
	}
	mergeVector := func(dst *qdrant.VectorParams, diff *qdrant.VectorParamsDiff) {
		if dst == nil || diff == nil {
			return
		}
		if diff.HnswConfig != nil {
			if dst.HnswConfig == nil {
				dst.HnswConfig = &qdrant.HnswConfigDiff{}
			}
			proto.Merge(dst.HnswConfig, diff.HnswConfig)
		}
		if diff.OnDisk != nil {
			dst.OnDisk = diff.OnDisk
		}
		if _, keep, _ := parseQuantizationDiff(diff.GetQuantizationConfig()); !keep {
			dst.QuantizationConfig = diffToConfig(diff.GetQuantizationConfig())
		}
	}
	mergeVector(next.GetVectorsConfig().GetParams(), req.GetVectorsConfig().GetParams())
	for name, diff := range req.GetVectorsConfig().GetParamsMap().GetMap() {
		mergeVector(next.GetVectorsConfig().GetParamsMap().GetMap()[name], diff)
	}
	for name, p := range req.GetSparseVectorsConfig().GetMap() {
		if dst := next.GetSparseVectorsConfig().GetMap()[name]; dst != nil && p.Modifier != nil {
			dst.Modifier = p.Modifier
			c.sparse[name].idf = p.GetModifier() == qdrant.Modifier_Idf
		}
	}
	if len(req.GetMetadata()) > 0 {
		if next.Metadata == nil {
			next.Metadata = map[string]*qdrant.Value{}
		}
		for k, v := range req.GetMetadata() {
			next.Metadata[k] = v
		}
	}
	if _, keep, _ := parseQuantizationDiff(req.GetQuantizationConfig()); !keep {
		next.QuantizationConfig = diffToConfig(req.GetQuantizationConfig())
	}
	c.create = next
	// Graphs built from now on use the new parameters; a space whose
	// quantization changed gets a new graph now.
	for name, d := range c.dense {
		var vp *qdrant.VectorParams
		if c.unnamed {
			vp = next.GetVectorsConfig().GetParams()
		} else {
			vp = next.GetVectorsConfig().GetParamsMap().GetMap()[name]
		}
		d.m, d.efConstruct = hnswParams(next.GetHnswConfig(), vp.GetHnswConfig())
		q, _ := parseQuantization(next.GetQuantizationConfig())
		if vp.GetQuantizationConfig() != nil {
			q, _ = parseQuantization(vp.GetQuantizationConfig())
		}
		if q != d.quantile {
			d.quantile, d.ann = q, nil
		}
	}
	return c.maybeBuildANN()
}

// hnswParams resolves m and ef_construct from the collection's and the
// vector's HNSW settings (the vector's win), ignoring out-of-range values.
func hnswParams(hs ...*qdrant.HnswConfigDiff) (m, efc int) {
	m, efc = hnswM, hnswEfConstruction
	for _, h := range hs {
		if h == nil {
			continue
		}
		if h.M != nil && h.GetM() >= 2 && h.GetM() <= 128 {
			m = int(h.GetM())
		}
		if h.EfConstruct != nil && h.GetEfConstruct() >= 4 && h.GetEfConstruct() <= 4096 {
			efc = int(h.GetEfConstruct())
		}
	}
	return m, efc
}

// shardKeyString is a shard key's identity, tagged by kind so that the
// keyword "1" and the number 1 differ.
func shardKeyString(k *qdrant.ShardKey) string {
	switch v := k.GetKey().(type) {
	case *qdrant.ShardKey_Keyword:
		return "k:" + v.Keyword
	case *qdrant.ShardKey_Number:
		return "n:" + strconv.FormatUint(v.Number, 10)
	}
	return ""
}

func (c *collection) sortedShardKeys() []string {
	keys := make([]string, 0, len(c.shardKeys))
	for k := range c.shardKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CreateShardKey adds a shard key to a collection created with custom
// sharding. Points written with the key's selector live under it; see
// resolveShards for how selectors pick shards.
func (s *Store) CreateShardKey(ctx context.Context, req *qdrant.CreateShardKeyRequest) error {
	return s.shardKeyOp(ctx, req.GetCollectionName(), req.GetRequest().GetShardKey(), true)
}

// DeleteShardKey removes a shard key and, as in Qdrant, the points stored
// under it.
func (s *Store) DeleteShardKey(ctx context.Context, req *qdrant.DeleteShardKeyRequest) error {
	return s.shardKeyOp(ctx, req.GetCollectionName(), req.GetRequest().GetShardKey(), false)
}

func (s *Store) shardKeyOp(ctx context.Context, name string, key *qdrant.ShardKey, create bool) error {
	c, err := s.collection(name)
	if err != nil {
		return err
	}
	if !c.custom {
		return invalidf("Shard key operations are only allowed for collections with custom sharding (collection `%s`)", c.name)
	}
	ks := shardKeyString(key)
	if ks == "" {
		return invalidf("shard key is empty")
	}
	data, err := proto.Marshal(&qdrant.CreateShardKeyRequest{CollectionName: c.name, Request: &qdrant.CreateShardKey{ShardKey: key}})
	if err != nil {
		return internalf("encode shard key: %v", err)
	}
	typ := opCreateShardKey
	if !create {
		typ = opDeleteShardKey
	}
	_, err = s.write(ctx, c, typ, true, func() ([]byte, func() func(), error) {
		_, exists := c.shardKeys[ks]
		switch {
		case create && exists:
			return nil, nil, invalidf("Shard key %s already exists", ks[2:])
		case !create && !exists:
			return nil, nil, status.Errorf(codes.NotFound, "Not found: Shard key %s not found", ks[2:])
		}
		return data, func() func() {
			if create {
				c.addShardKey(key)
			} else {
				c.dropShardKey(ks)
			}
			return nil
		}, nil
	})
	return err
}

// addShardKey records a key under a new shard number. Numbers are never
// reused while the store is open, so a request that resolved a key before
// it was deleted (and perhaps created again) matches none of the new
// shard's points. Caller holds c.mu for writing.
func (c *collection) addShardKey(k *qdrant.ShardKey) {
	ks := shardKeyString(k)
	c.nextShard++
	c.shardKeys[ks] = k
	c.shardNum[ks] = c.nextShard
}

// dropShardKey removes a key and the points stored under it. Caller holds
// c.mu for writing.
func (c *collection) dropShardKey(ks string) {
	n := c.shardNum[ks]
	delete(c.shardKeys, ks)
	delete(c.shardNum, ks)
	var ids []pointID
	for _, p := range c.points {
		if p.live && p.shard == n {
			ids = append(ids, p.id)
		}
	}
	c.applyDelete(ids)
}

// ListShardKeys returns a collection's shard keys.
func (s *Store) ListShardKeys(ctx context.Context, name string) ([]*qdrant.ShardKeyDescription, error) {
	c, err := s.collection(name)
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := []*qdrant.ShardKeyDescription{}
	for _, k := range c.sortedShardKeys() {
		out = append(out, &qdrant.ShardKeyDescription{Key: c.shardKeys[k]})
	}
	return out, nil
}

// shardSel is the set of shard numbers a request may see or touch; nil
// means every shard (no selector). Selectors name few keys, so a slice.
type shardSel []uint32

func (sel shardSel) has(n uint32) bool {
	for _, x := range sel {
		if x == n {
			return true
		}
	}
	return false
}

// shardedCollection returns the collection (or alias target) and the shards
// a request's selector resolves to: the prelude of every point call that
// may name shard keys.
func (s *Store) shardedCollection(name string, sel *qdrant.ShardKeySelector) (*collection, shardSel, error) {
	c, err := s.collection(name)
	if err != nil {
		return nil, nil, err
	}
	shards, err := c.resolveShards(sel)
	if err != nil {
		return nil, nil, err
	}
	return c, shards, nil
}

// resolveShards maps a selector to shard numbers, as Qdrant does: each
// listed key that exists, or the fallback key in place of one that does
// not; a missing key without a fallback (or a missing fallback) is
// NotFound. Only a custom-sharded collection accepts a selector. A selector
// naming no key selects every shard.
func (c *collection) resolveShards(sel *qdrant.ShardKeySelector) (shardSel, error) {
	if sel == nil {
		return nil, nil
	}
	if !c.custom {
		return nil, invalidf("Shard key specified, but collection `%s` does not use custom sharding", c.name)
	}
	if len(sel.GetShardKeys()) == 0 && sel.Fallback == nil {
		return nil, nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	notFound := func(k *qdrant.ShardKey) error {
		ks := shardKeyString(k)
		return status.Errorf(codes.NotFound, "Not found: Shard key %s not found", ks[min(2, len(ks)):])
	}
	var fallback uint32
	if sel.Fallback != nil {
		n, ok := c.shardNum[shardKeyString(sel.Fallback)]
		if !ok {
			return nil, notFound(sel.Fallback)
		}
		fallback = n
	}
	out := shardSel{}
	for _, k := range sel.GetShardKeys() {
		n, ok := c.shardNum[shardKeyString(k)]
		if !ok {
			if fallback == 0 {
				return nil, notFound(k)
			}
			n = fallback
		}
		if !out.has(n) {
			out = append(out, n)
		}
	}
	if len(sel.GetShardKeys()) == 0 {
		out = append(out, fallback)
	}
	return out, nil
}

// shardPred restricts pred to the points of the selected shards; with no
// selector it is pred itself, so unsharded requests pay nothing. The
// result runs only under c.mu, as every predicate does.
func (c *collection) shardPred(shards shardSel, pred predicate) predicate {
	if shards == nil {
		return pred
	}
	return func(id pointID, payload map[string]*qdrant.Value) bool {
		slot, ok := c.slots[id]
		return ok && shards.has(c.points[slot].shard) && (pred == nil || pred(id, payload))
	}
}

// inShards reports whether slot's point is visible to the selection.
// Caller holds c.mu.
func (c *collection) inShards(shards shardSel, slot uint32) bool {
	return shards == nil || shards.has(c.points[slot].shard)
}

// upsertShard resolves the one shard an upsert writes to and the selector
// to log with it (naming that shard's key, never the fallback). A
// custom-sharded collection needs a selector (Qdrant answers "Shard key not
// specified"), and the store keeps one copy of each point, so a selector
// that resolves to several shards is refused.
func (c *collection) upsertShard(shards shardSel) (uint32, *qdrant.ShardKeySelector, error) {
	if !c.custom {
		return 0, nil, nil
	}
	if len(shards) == 0 {
		return 0, nil, invalidf("Shard key not specified: collection `%s` uses custom sharding, so writes that add points need a shard_key_selector", c.name)
	}
	if len(shards) > 1 {
		return 0, nil, invalidf("an upsert may name one shard key: the embedded store keeps one copy of each point")
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for ks, n := range c.shardNum {
		if n == shards[0] {
			return n, &qdrant.ShardKeySelector{ShardKeys: []*qdrant.ShardKey{c.shardKeys[ks]}}, nil
		}
	}
	return 0, nil, shardGone()
}

// shardGone answers a write whose shard key was deleted after the request
// resolved it.
func shardGone() error {
	return status.Errorf(codes.NotFound, "Not found: the selected shard key was deleted")
}

// checkPlacement refuses to write into a shard deleted since the request
// resolved it, and to move an existing point to another shard: Qdrant
// would keep a second copy under the new key, the store keeps one per id.
// Caller holds c.mu.
func (c *collection) checkPlacement(ps []preparedPoint, shard uint32) error {
	if !c.custom {
		return nil
	}
	found := false
	for _, n := range c.shardNum {
		found = found || n == shard
	}
	if !found {
		return shardGone()
	}
	for _, p := range ps {
		if slot, ok := c.slots[p.id]; ok && c.points[slot].shard != shard {
			return invalidf("point %s exists under another shard key: the embedded store keeps one copy of each id, so delete it there first", p.id)
		}
	}
	return nil
}

// placeLogged sets the shard of points read from a WAL or snapshot upsert
// record: the one key its selector names, or none for a record without a
// selector (as every record written before points had shards). Replaying.
func (c *collection) placeLogged(ps []preparedPoint, sel *qdrant.ShardKeySelector) error {
	keys := sel.GetShardKeys()
	if len(keys) == 0 {
		return nil
	}
	n, ok := c.shardNum[shardKeyString(keys[0])]
	if len(keys) != 1 || !ok {
		return fmt.Errorf("points record names an unknown shard key in collection %q", c.name)
	}
	for i := range ps {
		ps[i].shard = n
	}
	return nil
}

func cloneCreate(c *qdrant.CreateCollection) *qdrant.CreateCollection {
	return proto.Clone(c).(*qdrant.CreateCollection)
}
