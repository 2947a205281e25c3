package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// citeMarker matches the answer text's citation markers as the generate
// service reads them: [1], ［1］, 【1】 and lists such as [1, 3].
var citeMarker = regexp.MustCompile(`[\[［【]\s*(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\s*[\]］】]`)

// checkCitationNumbers checks that every citation carries a distinct n
// that the answer text's markers use.
func checkCitationNumbers(t *testing.T, res askResult) {
	t.Helper()
	used := map[int]bool{}
	for _, m := range citeMarker.FindAllStringSubmatch(res.Text, -1) {
		for _, f := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ',' || r == '，' || r == '、' || r == ' ' }) {
			if n, err := strconv.Atoi(f); err == nil {
				used[n] = true
			}
		}
	}
	seen := map[int]bool{}
	for _, c := range res.Citations {
		if !used[c.N] || seen[c.N] {
			t.Errorf("citation %+v: n %d is not a distinct marker of the text %q", c, c.N, res.Text)
		}
		seen[c.N] = true
	}
}

// TestPrintAnswerTailNumbersSources checks that the sources are listed
// with the numbers the answer text uses, not their position: citations
// come in order of first use.
func TestPrintAnswerTailNumbersSources(t *testing.T) {
	res := askResult{RequestID: "r1", FinishReason: "stop", Text: "Ships in March [4]. Budget [2], team [5].",
		Citations: []chatCitation{
			{N: 4, DocumentID: "plan", Title: "Plan", Score: 0.9},
			{N: 2, DocumentID: "budget", Score: 0.5},
			{N: 5, DocumentID: "team", Title: "Team", Score: 0.25, Snippet: "  meets\non Tuesdays "},
		}}
	checkCitationNumbers(t, res)
	var b bytes.Buffer
	printAnswerTail(&b, res)
	for _, want := range []string{
		"  [4] Plan (document plan, score 0.900)\n",
		"  [2] budget (document budget, score 0.500)\n",
		"  [5] Team (document team, score 0.250)\n      meets on Tuesdays\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("printAnswerTail() =\n%s\nwant it to contain %q", b.String(), want)
		}
	}
	// An answer whose producer did not number its citations keeps the
	// position.
	b.Reset()
	printAnswerTail(&b, askResult{Citations: []chatCitation{{DocumentID: "a"}, {DocumentID: "b"}}})
	if !strings.Contains(b.String(), "  [1] a ") || !strings.Contains(b.String(), "  [2] b ") {
		t.Errorf("printAnswerTail(unnumbered) =\n%s", b.String())
	}
}
