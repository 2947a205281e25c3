package events

import (
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // UUID version 5 is defined on SHA-1; not used for security.
	"encoding/hex"
	"strconv"
)

// chunkNamespace is the UUID namespace of chunk ids (a fixed random UUID).
var chunkNamespace = [16]byte{0x6b, 0x1f, 0x3c, 0x2e, 0x94, 0x4d, 0x4f, 0x0a, 0x9a, 0x57, 0x1e, 0x8b, 0x2c, 0x47, 0xd3, 0x60}

// eventNamespace is the UUID namespace of DeterministicID.
var eventNamespace = [16]byte{0x2d, 0x8e, 0x71, 0x05, 0xc3, 0x19, 0x4b, 0x6f, 0x8e, 0x20, 0x5a, 0x93, 0x0f, 0x6c, 0xb4, 0x7e}

// NewID returns a random UUID (version 4) in canonical form, for ce_id and
// generated document and request ids.
func NewID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return format(u)
}

// ChunkID returns the deterministic id of chunk index of version version of
// the document documentID of tenant tenantID: a name-based UUID (version 5),
// so the same chunk always gets the same id and a replay overwrites instead
// of duplicating. The id doubles as the Qdrant point id. The tenant is part
// of the name so that two tenants that choose the same document id never
// share points.
func ChunkID(tenantID, documentID string, version, index int) string {
	return uuid5(chunkNamespace, lengthPrefixed(tenantID, documentID, strconv.Itoa(version), strconv.Itoa(index)))
}

// DeterministicID returns a name-based UUID (version 5) of parts, for event
// ids that must be the same when an event is produced again (e.g. the ce_id
// of a chunk event derived from its chunk id and event type).
func DeterministicID(parts ...string) string {
	return uuid5(eventNamespace, lengthPrefixed(parts...))
}

// lengthPrefixed joins parts unambiguously: "a/b"+"c" and "a"+"b/c" differ.
func lengthPrefixed(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		b = strconv.AppendInt(b, int64(len(p)), 10)
		b = append(b, ':')
		b = append(b, p...)
	}
	return b
}

func uuid5(ns [16]byte, name []byte) string {
	h := sha1.New() //nolint:gosec // see import
	h.Write(ns[:])
	h.Write(name)
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return format(u)
}

func format(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
