package moderate

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The evaluation set (testdata/eval) holds English and Chinese
// injections with their obfuscations, benign look-alikes, personal data in
// many formats and ordinary numbers. TestEval measures the default bundle
// on it per category and fails below the thresholds of docs/moderate.md.
const (
	minInjectionRecall  = 0.9
	maxFalseRefusals    = 0.05
	minPIIRecall        = 0.95
	maxFalseRedactions  = 0.05
	evalInjectionFile   = "testdata/eval/injection.jsonl"
	evalPersonalDataSet = "testdata/eval/pii.jsonl"
	// The held-out files were written after the rules were tuned on the
	// two above and were not tuned on: TestEval reports them apart.
	heldoutInjectionFile   = "testdata/eval/injection_heldout.jsonl"
	heldoutPersonalDataSet = "testdata/eval/pii_heldout.jsonl"
)

type injectionCase struct {
	Category, Label, Text string
}

type piiCase struct {
	Category, Text string
	PII, Keep      []string
}

func readJSONL[T any](t testing.TB, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var c T
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		out = append(out, c)
	}
	return out
}

type tally struct{ hit, total int }

func (c tally) rate() float64 {
	if c.total == 0 {
		return 0
	}
	return float64(c.hit) / float64(c.total)
}

// evalResult counts one evaluation: injections caught, benign questions
// refused, personal data redacted, ordinary values kept.
type evalResult struct{ caught, refused, found, kept tally }

func (r *evalResult) add(o evalResult) {
	for _, p := range []struct{ a, b *tally }{{&r.caught, &o.caught}, {&r.refused, &o.refused}, {&r.found, &o.found}, {&r.kept, &o.kept}} {
		p.a.hit += p.b.hit
		p.a.total += p.b.total
	}
}

func (r evalResult) log(t *testing.T, name string) {
	t.Logf("%s: injection recall %.3f (%d/%d); benign false refusals %.3f (%d/%d)", name,
		r.caught.rate(), r.caught.hit, r.caught.total, r.refused.rate(), r.refused.hit, r.refused.total)
	t.Logf("%s: personal data recall %.3f (%d/%d); ordinary values falsely redacted %.3f (%d/%d)", name,
		r.found.rate(), r.found.hit, r.found.total, 1-r.kept.rate(), r.kept.total-r.kept.hit, r.kept.total)
}

// TestEval measures both sets and holds their union to the thresholds.
func TestEval(t *testing.T) {
	p := newTestPolicy(t, Limits{})
	var all evalResult
	for _, set := range []struct{ name, injection, pii string }{
		{"development", evalInjectionFile, evalPersonalDataSet},
		{"held-out", heldoutInjectionFile, heldoutPersonalDataSet},
	} {
		r := evaluate(t, p, set.name, set.injection, set.pii)
		r.log(t, set.name)
		all.add(r)
	}
	all.log(t, "all")
	if all.caught.rate() < minInjectionRecall {
		t.Errorf("injection recall %.3f < %.2f", all.caught.rate(), minInjectionRecall)
	}
	if all.refused.rate() > maxFalseRefusals {
		t.Errorf("benign false refusals %.3f > %.2f", all.refused.rate(), maxFalseRefusals)
	}
	if all.found.rate() < minPIIRecall {
		t.Errorf("personal data recall %.3f < %.2f", all.found.rate(), minPIIRecall)
	}
	if fr := 1 - all.kept.rate(); fr > maxFalseRedactions {
		t.Errorf("false redactions %.3f > %.2f", fr, maxFalseRedactions)
	}
}

func evaluate(t *testing.T, p *Policy, name, injectionFile, piiFile string) evalResult {
	ctx := context.Background()

	byCat := map[string]*tally{}
	var caught, refused tally
	for _, c := range readJSONL[injectionCase](t, injectionFile) {
		d, err := p.DecideInput(ctx, c.Text)
		if err != nil {
			t.Fatal(err)
		}
		rejected := !d.Allow && d.Code == "prompt_injection"
		ct := byCat["injection/"+c.Category]
		if ct == nil {
			ct = &tally{}
			byCat["injection/"+c.Category] = ct
		}
		ct.total++
		switch c.Label {
		case "injection":
			caught.total++
			if rejected {
				caught.hit++
				ct.hit++
			} else {
				t.Logf("missed injection (%s, score %.2f): %q", c.Category, d.Score, c.Text)
			}
		case "benign":
			refused.total++
			if rejected {
				refused.hit++
				t.Logf("refused benign (%s, %v): %q", c.Category, d.Rules, c.Text)
			} else {
				ct.hit++
			}
		default:
			t.Fatalf("label %q", c.Label)
		}
	}

	var found, kept tally
	for _, c := range readJSONL[piiCase](t, piiFile) {
		d, err := p.DecideOutput(ctx, c.Text, 0)
		if err != nil {
			t.Fatal(err)
		}
		ct := byCat["pii/"+c.Category]
		if ct == nil {
			ct = &tally{}
			byCat["pii/"+c.Category] = ct
		}
		for _, v := range c.PII {
			found.total++
			ct.total++
			if !strings.Contains(d.Text, v) {
				found.hit++
				ct.hit++
			} else {
				t.Logf("personal data kept (%s): %q → %q", c.Category, v, d.Text)
			}
		}
		for _, v := range c.Keep {
			kept.total++
			ct.total++
			if strings.Contains(d.Text, v) {
				kept.hit++
				ct.hit++
			} else {
				t.Logf("ordinary value redacted (%s): %q → %q", c.Category, v, d.Text)
			}
		}
	}

	cats := make([]string, 0, len(byCat))
	for k := range byCat {
		cats = append(cats, k)
	}
	sort.Strings(cats)
	for _, k := range cats {
		t.Logf("%s %-28s %2d/%2d correct", name, k, byCat[k].hit, byCat[k].total)
	}
	return evalResult{caught, refused, found, kept}
}

// BenchmarkEvalLatency runs every text of the evaluation set through its
// policy (questions through the input policy, personal-data sentences
// through the output policy) and reports wall-clock percentiles of one
// decision and the mean CPU time of one (process CPU time over all of
// them), which neighbours on a shared machine inflate far less. Where the
// system can tell (Linux), it also reports percentiles of each decision's
// own CPU time (the thread's, which waiting for a CPU does not inflate):
// what the wall-clock percentiles would be on an idle machine, but for
// the background garbage collector's share.
func BenchmarkEvalLatency(b *testing.B) {
	p := newTestPolicy(b, Limits{})
	ctx := context.Background()
	inj := readJSONL[injectionCase](b, evalInjectionFile)
	pii := readJSONL[piiCase](b, evalPersonalDataSet)
	var in, out, inCPU, outCPU []time.Duration
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := cpuTime()
	for b.Loop() {
		for _, c := range inj {
			start, t0 := time.Now(), threadCPUTime()
			if _, err := p.DecideInput(ctx, c.Text); err != nil {
				b.Fatal(err)
			}
			in = append(in, time.Since(start))
			inCPU = append(inCPU, threadCPUTime()-t0)
		}
		for _, c := range pii {
			start, t0 := time.Now(), threadCPUTime()
			if _, err := p.DecideOutput(ctx, c.Text, 0); err != nil {
				b.Fatal(err)
			}
			out = append(out, time.Since(start))
			outCPU = append(outCPU, threadCPUTime()-t0)
		}
	}
	cpu := cpuTime() - cpu0
	pct := func(d []time.Duration, q float64) float64 {
		d = slices.Clone(d)
		slices.Sort(d)
		return float64(d[int(q*float64(len(d)-1))].Microseconds())
	}
	b.ReportMetric(pct(in, 0.5), "input-p50-µs")
	b.ReportMetric(pct(in, 0.99), "input-p99-µs")
	b.ReportMetric(pct(out, 0.5), "output-p50-µs")
	b.ReportMetric(pct(out, 0.99), "output-p99-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(in)+len(out)), "cpu-µs/decision")
	if threadCPUTime() > 0 {
		b.ReportMetric(pct(inCPU, 0.5), "input-cpu-p50-µs")
		b.ReportMetric(pct(inCPU, 0.99), "input-cpu-p99-µs")
		b.ReportMetric(pct(outCPU, 0.5), "output-cpu-p50-µs")
		b.ReportMetric(pct(outCPU, 0.99), "output-cpu-p99-µs")
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
