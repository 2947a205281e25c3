package kafkatransport

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASL mechanisms a client can authenticate with.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// Security is how a client authenticates to the brokers and protects its
// connections. The zero value is plaintext without SASL, what a local
// broker without authentication takes; clusters such as MSK, Confluent
// Cloud, Redpanda or Strimzi want SASL, TLS or both. Every client the
// package makes (publisher, subscriber, topic admin) uses it.
type Security struct {
	// SASL authenticates each connection; nil: none.
	SASL sasl.Mechanism
	// TLS encrypts each connection; nil: plaintext.
	TLS *tls.Config
}

// NewSASL returns the SASL mechanism named mechanism (PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512, case-insensitive) for username and
// password; an empty mechanism gives nil (no SASL).
func NewSASL(mechanism, username, password string) (sasl.Mechanism, error) {
	switch strings.ToUpper(mechanism) {
	case "", "NONE":
		return nil, nil
	case MechanismPlain:
		if username == "" {
			return nil, fmt.Errorf("sasl %s: no username", MechanismPlain)
		}
		return plain.Mechanism{Username: username, Password: password}, nil
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		algo := scram.SHA256
		if strings.EqualFold(mechanism, MechanismSCRAMSHA512) {
			algo = scram.SHA512
		}
		if username == "" {
			return nil, fmt.Errorf("sasl %s: no username", strings.ToUpper(mechanism))
		}
		m, err := scram.Mechanism(algo, username, password)
		if err != nil {
			return nil, fmt.Errorf("sasl %s: %w", strings.ToUpper(mechanism), err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("unknown sasl mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", mechanism)
}

// apply sets s on a transport (publisher and admin clients).
func (s Security) apply(t *kafka.Transport) {
	t.SASL, t.TLS = s.SASL, s.TLS
}

// dialer returns the dialer of a reader with s.
func (s Security) dialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, SASLMechanism: s.SASL, TLS: s.TLS}
}

// ReaderConfig sets s on a reader's configuration, for consumers that
// build their own kafka.Reader.
func (s Security) ReaderConfig(rc *kafka.ReaderConfig) { rc.Dialer = s.dialer() }

// Client returns an admin client of the cluster at brokers with s, with
// its own transport (close its idle connections when done) and a bounded
// request time.
func (s Security) Client(brokers []string) (*kafka.Client, *kafka.Transport) {
	t := &kafka.Transport{MetadataTTL: time.Second, DialTimeout: 5 * time.Second}
	s.apply(t)
	return &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: t}, t
}

// PublisherSecurity makes the publisher authenticate and encrypt as s
// says.
func PublisherSecurity(s Security) PublisherOption {
	return func(c *publisherConfig) { c.security = s }
}

// SubscriberSecurity makes the subscriber's reader authenticate and
// encrypt as s says.
func SubscriberSecurity(s Security) SubscriberOption {
	return SubscriberReaderConfig(s.ReaderConfig)
}
