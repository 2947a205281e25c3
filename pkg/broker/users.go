package broker

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/tributary-rag/tributary/pkg/events"
)

// AdminUser is the superuser of a users file.
const AdminUser = "admin"

// LoadUsers reads a users file: one "name:password" a line ('#' starts a
// comment). The user "admin" is the superuser; every other name must be a
// service's, and gets that service's least-privilege Access on the topics
// of t (ServiceAccess). When file does not exist and generate is true, it
// is written first (mode 0600) with a random password for admin and each
// service.
func LoadUsers(file string, t events.Topics, generate bool) ([]User, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) && generate {
		if b, err = generateUsers(file); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	return ParseUsers(b, t)
}

// ParseUsers parses the content of a users file (see LoadUsers).
func ParseUsers(b []byte, t events.Topics) ([]User, error) {
	access := ServiceAccess(t)
	var users []User
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, pass, ok := strings.Cut(line, ":")
		if !ok || name == "" || len(pass) < 8 {
			return nil, fmt.Errorf("users file line %d: want name:password with a password of at least 8 characters", n)
		}
		if slices.ContainsFunc(users, func(u User) bool { return u.Name == name }) {
			return nil, fmt.Errorf("users file line %d: %q twice", n, name)
		}
		u := User{Name: name, Password: pass, Superuser: name == AdminUser}
		if !u.Superuser {
			a, ok := access[name]
			if !ok {
				return nil, fmt.Errorf("users file line %d: %q is neither %s nor a service (%s)", n, name, AdminUser, strings.Join(ServiceNames(), ", "))
			}
			u.Access = a
		}
		users = append(users, u)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	if len(users) == 0 {
		return nil, errors.New("users file: no users")
	}
	return users, nil
}

// ServiceNames are the principals ServiceAccess knows, sorted.
func ServiceNames() []string {
	var names []string
	for n := range ServiceAccess(events.NewTopics("")) {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Password returns the password of user name in users.
func Password(users []User, name string) (string, bool) {
	for _, u := range users {
		if u.Name == name {
			return u.Password, true
		}
	}
	return "", false
}

func generateUsers(file string) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# Kafka principals of tributary broker: name:password (admin is the superuser).\n")
	for _, name := range append([]string{AdminUser}, ServiceNames()...) {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("generate password: %w", err)
		}
		fmt.Fprintf(&buf, "%s:%s\n", name, base64.RawURLEncoding.EncodeToString(raw))
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("users file: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("users file: %w", err)
	}
	return buf.Bytes(), f.Close()
}
