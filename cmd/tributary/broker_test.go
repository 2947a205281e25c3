package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// firstLine delivers the first line r prints (the broker's address), or
// closes when r ends without one; the rest of r is drained.
func firstLine(r io.Reader) <-chan string {
	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(r)
		if s.Scan() {
			lines <- s.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, r)
	}()
	return lines
}

// startBroker runs "tributary broker args..." in process and returns its
// advertised address and a stop function that waits for it to exit.
func startBroker(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runBroker(ctx, args, pw, io.Discard)
		pw.Close()
	}()
	lines := firstLine(pr)
	var addr string
	select {
	case addr = <-lines:
	case err := <-done:
		cancel()
		t.Fatalf("broker exited: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("broker printed no address")
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("runBroker() = %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("broker did not stop")
		}
	}
	t.Cleanup(stop)
	return addr, stop
}

// TestBrokerDurableAcrossRestart writes messages and commits a group
// offset, restarts the broker on the same --data-dir (and another port),
// and finds both again.
func TestBrokerDurableAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	addr, stop := startBroker(t, "--listen", "127.0.0.1:0", "--data-dir", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, group = "durable", "durable-group"
	if err := kafkatransport.EnsureTopics(ctx, []string{addr}, kafkatransport.Security{}, kafkatransport.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	pub := kafkatransport.NewPublisher([]string{addr})
	var msgs []kafka.Message
	for i := 0; i < 3; i++ {
		msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte("k"), Value: []byte(fmt.Sprintf("m%d", i)),
			Headers: []kafka.Header{{Key: "h", Value: []byte{byte('0' + i)}}}})
	}
	if err := pub.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: group, Topic: topic, MaxWait: 100 * time.Millisecond})
	for i := 0; i < 2; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	stop()

	addr2, _ := startBroker(t, "--listen", "127.0.0.1:0", "--data-dir", dir)
	r2 := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr2}, GroupID: group, Topic: topic, MaxWait: 100 * time.Millisecond})
	defer r2.Close()
	m, err := r2.FetchMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Value) != "m2" || m.Offset != 2 || len(m.Headers) != 1 || string(m.Headers[0].Value) != "2" {
		t.Errorf("after restart the group resumed at %d %q %v, want offset 2 \"m2\" with its header", m.Offset, m.Value, m.Headers)
	}
	// All three messages are still in the log.
	all := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr2}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer all.Close()
	var got []string
	for len(got) < 3 {
		m, err := all.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(m.Value))
	}
	if strings.Join(got, ",") != "m0,m1,m2" {
		t.Errorf("log after restart = %v", got)
	}
}

// startBrokerProcess runs "tributary broker args..." as a child process
// (the test binary, see TestMain) and returns its address and the process.
func startBrokerProcess(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(append([]string{"broker"}, args...), "\n"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	select {
	case addr, ok := <-firstLine(out):
		if !ok {
			t.Fatal("broker process printed no address")
		}
		return addr, cmd
	case <-time.After(30 * time.Second):
		t.Fatal("broker process printed no address within 30s")
	}
	return "", nil
}

// TestBrokerSurvivesKill acknowledges writes and a commit on a broker
// without --fsync, kills the process with SIGKILL (no shutdown save), and
// finds every acknowledged message and the committed offset after a
// restart on the same data dir: acknowledged means in the page cache,
// which outlives the process.
func TestBrokerSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	addr, cmd := startBrokerProcess(t, "--listen", "127.0.0.1:0", "--data-dir", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, group, n = "killed", "killed-group", 50
	if err := kafkatransport.EnsureTopics(ctx, []string{addr}, kafkatransport.Security{}, kafkatransport.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	pub := kafkatransport.NewPublisher([]string{addr})
	for i := 0; i < n; i++ { // one acknowledged produce each
		if err := pub.WriteMessages(ctx, kafka.Message{Topic: topic, Value: []byte(fmt.Sprintf("m%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	_ = pub.Close()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: group, Topic: topic, MaxWait: 100 * time.Millisecond})
	var last kafka.Message
	for i := 0; i < n/2; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last = m
	}
	if err := r.CommitMessages(ctx, last); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	_ = r.Close()

	addr2, _ := startBrokerProcess(t, "--listen", "127.0.0.1:0", "--data-dir", dir)
	r2 := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr2}, GroupID: group, Topic: topic, MaxWait: 100 * time.Millisecond})
	defer r2.Close()
	m, err := r2.FetchMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("m%d", n/2); string(m.Value) != want {
		t.Errorf("after the kill the group resumed at %q (offset %d), want %q", m.Value, m.Offset, want)
	}
	all := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr2}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer all.Close()
	for i := 0; i < n; i++ {
		m, err := all.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("m%d", i); string(m.Value) != want {
			t.Fatalf("message %d after the kill = %q, want %q", i, m.Value, want)
		}
	}
}

func TestBrokerUsage(t *testing.T) {
	tests := [][]string{{"--nope"}, {"extra"}, {"--partitions", "0"}}
	for _, args := range tests {
		if err := runBroker(context.Background(), args, io.Discard, io.Discard); err != errUsage {
			t.Errorf("runBroker(%q) = %v, want errUsage", args, err)
		}
	}
	if err := runBroker(context.Background(), []string{"--listen", "bad"}, io.Discard, io.Discard); err == nil {
		t.Error("runBroker with a bad listen address succeeded")
	}
}
