package ingest

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on request fields.
const (
	maxIDLen        = 256
	maxTitleLen     = 1024
	maxSourceLen    = 2048
	maxGroups       = 64
	maxGroupLen     = 128
	maxMetadataKeys = 64
	maxMetaKeyLen   = 128
	maxMetaValueLen = 4096
	// maxMetadataBytes bounds all metadata together: it is copied into
	// every chunk event.
	maxMetadataBytes = 16 << 10
)

// validateDocument checks and normalises the request fields.
func validateDocument(d *Document) error {
	if err := ValidateID(d.ID); err != nil {
		return err
	}
	if err := checkText("title", d.Title, maxTitleLen); err != nil {
		return err
	}
	if err := checkText("source", d.Source, maxSourceLen); err != nil {
		return err
	}
	if err := checkText("content_type", d.ContentType, 255); err != nil {
		return err
	}
	if err := checkText("filename", d.Filename, 1024); err != nil {
		return err
	}
	groups, err := normalizeGroups(d.Groups)
	if err != nil {
		return err
	}
	d.Groups = groups
	if len(d.Metadata) > maxMetadataKeys {
		return fmt.Errorf("%w: metadata has %d keys, limit %d", ErrInvalid, len(d.Metadata), maxMetadataKeys)
	}
	total := 0
	for k, v := range d.Metadata {
		total += len(k) + len(v)
		if k == "" {
			return fmt.Errorf("%w: empty metadata key", ErrInvalid)
		}
		if err := checkText("metadata key", k, maxMetaKeyLen); err != nil {
			return err
		}
		if !utf8.ValidString(v) || len(v) > maxMetaValueLen {
			return fmt.Errorf("%w: metadata value of %q is not valid UTF-8 of at most %d bytes", ErrInvalid, k, maxMetaValueLen)
		}
	}
	if total > maxMetadataBytes {
		return fmt.Errorf("%w: metadata of %d bytes, limit %d", ErrInvalid, total, maxMetadataBytes)
	}
	if len(d.Metadata) == 0 {
		d.Metadata = nil
	}
	return nil
}

// ValidateID reports whether id can name a document: 1 to 256 bytes of
// UTF-8 without control characters, spaces or slashes.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty document_id", ErrInvalid)
	}
	if len(id) > maxIDLen || !utf8.ValidString(id) {
		return fmt.Errorf("%w: document_id must be valid UTF-8 of at most %d bytes", ErrInvalid, maxIDLen)
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == '/' || r == '\\' || r == utf8.RuneError {
			return fmt.Errorf("%w: document_id %q contains %q", ErrInvalid, id, r)
		}
	}
	return nil
}

func checkText(field, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, field, max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, field)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s contains a control character", ErrInvalid, field)
		}
	}
	return nil
}

func normalizeGroups(in []string) ([]string, error) {
	var out []string
	for _, g := range in {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if err := checkText("group", g, maxGroupLen); err != nil {
			return nil, err
		}
		if strings.ContainsAny(g, ",|: ") {
			return nil, fmt.Errorf("%w: group %q contains one of ',|: '", ErrInvalid, g)
		}
		out = append(out, g)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxGroups {
		return nil, fmt.Errorf("%w: %d groups, limit %d", ErrInvalid, len(out), maxGroups)
	}
	return out, nil
}
