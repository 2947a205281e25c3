package ingest

import "slices"

// mayPublishTo reports whether p may make a document visible to groups: a
// tenant-wide key may choose any groups, a group key only its own.
func mayPublishTo(p Principal, groups []string) bool {
	if len(p.Groups) == 0 {
		return true
	}
	if len(groups) == 0 {
		return false
	}
	for _, g := range groups {
		if !slices.Contains(p.Groups, g) {
			return false
		}
	}
	return true
}

// maySee reports whether p may see a document of groups: a tenant-wide key
// sees every document, a group key those of the whole tenant and those
// shared with one of its groups.
func maySee(p Principal, groups []string) bool {
	if len(p.Groups) == 0 || len(groups) == 0 {
		return true
	}
	for _, g := range groups {
		if slices.Contains(p.Groups, g) {
			return true
		}
	}
	return false
}

// mayChange reports whether p may replace or delete a document of groups.
func mayChange(p Principal, groups []string) bool {
	return mayPublishTo(p, groups)
}
