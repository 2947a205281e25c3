package vectordb

import (
	"bytes"
	"fmt"

	"github.com/google/uuid"
	"github.com/qdrant/go-client/qdrant"
)

// pointID is a point's identity: an unsigned integer or a UUID. Numeric ids
// order before UUIDs, as in Qdrant.
type pointID struct {
	isUUID bool
	num    uint64
	u      [16]byte
}

func parsePointID(id *qdrant.PointId) (pointID, error) {
	if id == nil {
		return pointID{}, invalidf("point id is missing")
	}
	switch v := id.GetPointIdOptions().(type) {
	case *qdrant.PointId_Num:
		return pointID{num: v.Num}, nil
	case *qdrant.PointId_Uuid:
		u, err := uuid.Parse(v.Uuid)
		if err != nil {
			return pointID{}, invalidf("Unable to parse UUID: %s", v.Uuid)
		}
		return pointID{isUUID: true, u: u}, nil
	default:
		return pointID{}, invalidf("point id is empty")
	}
}

func (p pointID) proto() *qdrant.PointId {
	if p.isUUID {
		return qdrant.NewIDUUID(uuid.UUID(p.u).String())
	}
	return qdrant.NewIDNum(p.num)
}

func (p pointID) String() string {
	if p.isUUID {
		return uuid.UUID(p.u).String()
	}
	return fmt.Sprint(p.num)
}

func (p pointID) less(q pointID) bool {
	if p.isUUID != q.isUUID {
		return !p.isUUID
	}
	if !p.isUUID {
		return p.num < q.num
	}
	return bytes.Compare(p.u[:], q.u[:]) < 0
}
