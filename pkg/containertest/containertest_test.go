//go:build containers

package containertest

import (
	"context"
	"testing"
	"time"
)

func TestBuildImagesIsCached(t *testing.T) {
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	first, err := BuildImages(ctx, root, []string{BinaryTributary}, t.Logf)
	if err != nil {
		t.Fatalf("BuildImages: %v", err)
	}
	start := time.Now()
	second, err := BuildImages(ctx, root, []string{BinaryTributary}, t.Logf)
	if err != nil {
		t.Fatalf("BuildImages again: %v", err)
	}
	if first[BinaryTributary] == "" || first[BinaryTributary] != second[BinaryTributary] {
		t.Fatalf("image tags %q then %q, want the same non-empty tag", first[BinaryTributary], second[BinaryTributary])
	}
	t.Logf("second BuildImages took %v", time.Since(start))
}
