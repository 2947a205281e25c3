package vectordb

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors carry gRPC status codes so that the server returns what Qdrant
// returns; messages follow Qdrant's wording so that clients that log them
// see familiar text.

func invalidf(format string, args ...any) error {
	return status.Error(codes.InvalidArgument, "Wrong input: "+fmt.Sprintf(format, args...))
}

func collectionNotFound(name string) error {
	return status.Errorf(codes.NotFound, "Not found: Collection `%s` doesn't exist!", name)
}

func unimplementedf(format string, args ...any) error {
	return status.Errorf(codes.Unimplemented, "tributary vectordb: "+format+" is not implemented by the embedded store", args...)
}

func internalf(format string, args ...any) error {
	return status.Errorf(codes.Internal, format, args...)
}
