package vectordb

import (
	"context"
	"sort"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// dropCollection removes a collection and the aliases that point at it, as
// Qdrant does. Caller holds s.mu for writing (or is replaying).
func (s *Store) dropCollection(name string) {
	if c := s.colls[name]; c != nil {
		for _, d := range c.dense {
			d.release()
		}
	}
	delete(s.colls, name)
	for a, target := range s.aliases {
		if target == name {
			delete(s.aliases, a)
		}
	}
}

// UpdateAliases applies alias actions (create, rename, delete) atomically:
// they are checked in order against a copy of the alias table and logged as
// one WAL record, so a crash leaves the table as before or after, and a
// failing action leaves it unchanged. Creating an alias that exists points
// it at the new collection, which makes a single create an atomic switch.
func (s *Store) UpdateAliases(ctx context.Context, req *qdrant.ChangeAliases) error {
	if len(req.GetActions()) == 0 {
		return invalidf("no alias actions")
	}
	data, err := proto.Marshal(&qdrant.ChangeAliases{Actions: req.GetActions()})
	if err != nil {
		return internalf("encode aliases: %v", err)
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := applyAliasActions(s.aliases, s.colls, req.GetActions())
	if err != nil {
		return err
	}
	seq, err := s.wal.Append(opAliases, data)
	if err != nil {
		return internalf("append wal: %v", err)
	}
	s.aliases = next
	if err := s.wal.Sync(seq); err != nil {
		return internalf("sync wal: %v", err)
	}
	return nil
}

// applyAliasActions returns the alias table after actions, or the first
// action's error; cur is not modified.
func applyAliasActions(cur map[string]string, colls map[string]*collection, actions []*qdrant.AliasOperations) (map[string]string, error) {
	next := make(map[string]string, len(cur)+len(actions))
	for k, v := range cur {
		next[k] = v
	}
	for _, a := range actions {
		switch op := a.GetAction().(type) {
		case *qdrant.AliasOperations_CreateAlias:
			name, target := op.CreateAlias.GetAliasName(), op.CreateAlias.GetCollectionName()
			if err := validCollectionName(name); err != nil {
				return nil, err
			}
			if _, ok := colls[target]; !ok {
				return nil, collectionNotFound(target)
			}
			if _, ok := colls[name]; ok {
				return nil, invalidf("Collection with the same name `%s` already exists!", name)
			}
			next[name] = target
		case *qdrant.AliasOperations_RenameAlias:
			old, name := op.RenameAlias.GetOldAliasName(), op.RenameAlias.GetNewAliasName()
			target, ok := next[old]
			if !ok {
				return nil, aliasNotFound(old)
			}
			if err := validCollectionName(name); err != nil {
				return nil, err
			}
			if _, ok := colls[name]; ok {
				return nil, invalidf("Collection with the same name `%s` already exists!", name)
			}
			delete(next, old)
			next[name] = target
		case *qdrant.AliasOperations_DeleteAlias:
			name := op.DeleteAlias.GetAliasName()
			if _, ok := next[name]; !ok {
				return nil, aliasNotFound(name)
			}
			delete(next, name)
		default:
			return nil, invalidf("alias action is empty")
		}
	}
	return next, nil
}

func aliasNotFound(name string) error {
	return status.Errorf(codes.NotFound, "Not found: Alias %s does not exists!", name)
}

// ListAliases returns the aliases of one collection, or of all collections
// when collection is empty, sorted by alias.
func (s *Store) ListAliases(ctx context.Context, collection string) ([]*qdrant.AliasDescription, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if collection != "" {
		if _, ok := s.colls[collection]; !ok {
			return nil, collectionNotFound(collection)
		}
	}
	return s.aliasRecord(collection).toDescriptions(), nil
}

type aliasActions struct{ *qdrant.ChangeAliases }

// aliasRecord returns the aliases (of collection, or all when empty) as
// create actions sorted by alias: the form snapshots store. Caller holds s.mu.
func (s *Store) aliasRecord(collection string) aliasActions {
	names := make([]string, 0, len(s.aliases))
	for a, target := range s.aliases {
		if collection == "" || target == collection {
			names = append(names, a)
		}
	}
	sort.Strings(names)
	ca := &qdrant.ChangeAliases{}
	for _, a := range names {
		ca.Actions = append(ca.Actions, &qdrant.AliasOperations{Action: &qdrant.AliasOperations_CreateAlias{
			CreateAlias: &qdrant.CreateAlias{AliasName: a, CollectionName: s.aliases[a]},
		}})
	}
	return aliasActions{ca}
}

func (a aliasActions) toDescriptions() []*qdrant.AliasDescription {
	out := make([]*qdrant.AliasDescription, 0, len(a.Actions))
	for _, act := range a.Actions {
		c := act.GetCreateAlias()
		out = append(out, &qdrant.AliasDescription{AliasName: c.GetAliasName(), CollectionName: c.GetCollectionName()})
	}
	return out
}
