package events

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed schemas/*.json
var schemaFS embed.FS

// SchemaName returns the file name of the JSON Schema of event type typ,
// e.g. "chunk.created.json" for "tributary.chunk.created". Every audit type
// shares "audit.event.json".
func SchemaName(typ string) string {
	if strings.HasPrefix(typ, AuditTypePrefix) {
		return "audit.event.json"
	}
	return strings.TrimPrefix(typ, "tributary.") + ".json"
}

// Schema returns the JSON Schema (draft 2020-12) of event type typ.
func Schema(typ string) ([]byte, error) {
	if _, err := NewPayload(typ); err != nil {
		return nil, err
	}
	b, err := schemaFS.ReadFile("schemas/" + SchemaName(typ))
	if err != nil {
		return nil, fmt.Errorf("schema of %s: %w", typ, err)
	}
	return b, nil
}

// Validator checks payloads against their JSON Schemas. It is safe for
// concurrent use.
type Validator struct {
	schemas map[string]*jsonschema.Schema // by schema file name
}

// NewValidator compiles every embedded schema.
func NewValidator() (*Validator, error) {
	c := jsonschema.NewCompiler()
	entries, err := schemaFS.ReadDir("schemas")
	if err != nil {
		return nil, fmt.Errorf("read schemas: %w", err)
	}
	v := &Validator{schemas: map[string]*jsonschema.Schema{}}
	for _, e := range entries {
		b, err := schemaFS.ReadFile("schemas/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read schema %s: %w", e.Name(), err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("parse schema %s: %w", e.Name(), err)
		}
		if err := c.AddResource(schemaURL(e.Name()), doc); err != nil {
			return nil, fmt.Errorf("add schema %s: %w", e.Name(), err)
		}
	}
	for _, e := range entries {
		s, err := c.Compile(schemaURL(e.Name()))
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", e.Name(), err)
		}
		v.schemas[e.Name()] = s
	}
	return v, nil
}

// Validate checks the JSON payload data of an event of type typ against its
// schema.
func (v *Validator) Validate(typ string, data []byte) error {
	if _, err := NewPayload(typ); err != nil {
		return err
	}
	s, ok := v.schemas[SchemaName(typ)]
	if !ok {
		return fmt.Errorf("%w: no schema for %q", ErrUnknownType, typ)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidPayload, typ, err)
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidPayload, typ, err)
	}
	return nil
}

// ValidatePayload marshals p and validates it against its schema.
func (v *Validator) ValidatePayload(p Payload) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", p.EventType(), err)
	}
	return v.Validate(p.EventType(), b)
}

// schemaURL is the $id of a schema file; each schema file declares it.
func schemaURL(name string) string { return "urn:tributary:schema:" + name }
