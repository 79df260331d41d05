// Package cfenv reads what Cloud Foundry (and platforms that follow its
// conventions) tells an application: where to listen, in $PORT, and which
// services are bound to it, with their credentials, in $VCAP_SERVICES.
// airship takes from them what its own configuration does not set.
package cfenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/airshipltd/airship/internal/config"
)

// Need says which backends the process's modules use.
type Need struct{ Postgres, Redis bool }

// Apply fills in, for the keys explicitlySet says are not set:
//
//   - addr from PORT: ":$PORT";
//   - postgres_url and redis_url from the PostgreSQL and Redis services in
//     VCAP_SERVICES: a service is PostgreSQL if one of its tags is
//     "postgres" or "postgresql" or its label contains "postgres", Redis if
//     a tag is "redis" or its label contains "redis"; its credentials give
//     a "uri" or "url", or host (or hostname), port, password (and, for
//     PostgreSQL, username and name).
//
// When VCAP_SERVICES is set, it must be valid and must bind exactly one
// usable service for each backend URL not set otherwise that the modules
// of this process use; anything else is
// an error, never a quiet start on the embedded store. The embedded store
// is used there only if data_dir is set explicitly and neither backend is
// bound. Error messages name services and fields, never credentials.
func Apply(c *config.Config, getenv func(string) string, explicitlySet func(key string) bool, need Need) error {
	if port := getenv("PORT"); port != "" && !explicitlySet("addr") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("PORT %q is not a TCP port number", port)
		}
		c.Addr = ":" + port
	}
	raw := strings.TrimSpace(getenv("VCAP_SERVICES"))
	if raw == "" {
		return nil
	}
	var byLabel map[string][]vcapService
	if err := json.Unmarshal([]byte(raw), &byLabel); err != nil {
		return fmt.Errorf("VCAP_SERVICES is not a JSON object of service lists: %w", err)
	}
	// Only the backends the process's modules use are looked for.
	needPG := need.Postgres && !explicitlySet("postgres_url")
	needRedis := need.Redis && !explicitlySet("redis_url")
	if !needPG && !needRedis {
		return nil
	}
	var bound []vcapService
	for label, services := range byLabel {
		for _, s := range services {
			if s.Label == "" {
				s.Label = label
			}
			bound = append(bound, s)
		}
	}
	slices.SortFunc(bound, func(a, b vcapService) int { return strings.Compare(a.Name, b.Name) })
	if needPG && needRedis && explicitlySet("data_dir") &&
		len(postgresBinding.matching(bound)) == 0 && len(redisBinding.matching(bound)) == 0 {
		return nil // the embedded store, asked for explicitly
	}
	var errs []error
	if needPG {
		u, err := postgresBinding.url(bound)
		c.PostgresURL, errs = u, append(errs, err)
	}
	if needRedis {
		u, err := redisBinding.url(bound)
		c.RedisURL, errs = u, append(errs, err)
	}
	return errors.Join(errs...)
}

// vcapService is one service binding of VCAP_SERVICES.
type vcapService struct {
	Name        string         `json:"name"`
	Label       string         `json:"label"`
	Tags        []string       `json:"tags"`
	Credentials map[string]any `json:"credentials"`
}

// platformBinding says how to find a backend among the bound services.
type platformBinding struct {
	what    string   // for messages
	key     string   // the configuration key it sets
	tags    []string // a service with one of these tags, or whose label contains the first, is one
	schemes []string // the URL schemes accepted, the first for URLs made from fields
	port    int      // when the credentials give a host and no port
	withDB  bool     // the credentials' name/database is the URL's path
}

var (
	postgresBinding = platformBinding{what: "PostgreSQL", key: "postgres_url",
		tags: []string{"postgres", "postgresql"}, schemes: []string{"postgres", "postgresql"}, port: 5432, withDB: true}
	redisBinding = platformBinding{what: "Redis", key: "redis_url",
		tags: []string{"redis"}, schemes: []string{"redis", "rediss"}, port: 6379}
)

// matching returns the services that are b's kind.
func (b platformBinding) matching(services []vcapService) []vcapService {
	var out []vcapService
	for _, s := range services {
		hit := strings.Contains(strings.ToLower(s.Label), b.tags[0])
		for _, tag := range s.Tags {
			hit = hit || slices.Contains(b.tags, strings.ToLower(tag))
		}
		if hit {
			out = append(out, s)
		}
	}
	return out
}

// url returns the URL of the one service of b's kind, or an error that
// says what to do.
func (b platformBinding) url(services []vcapService) (string, error) {
	found := b.matching(services)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("VCAP_SERVICES binds no %s service (one tagged %s, or with %q in its label): bind one, or set %s",
			b.what, strings.Join(b.tags, " or "), b.tags[0], config.EnvName(b.key))
	case 1:
	default:
		names := make([]string, len(found))
		for i, s := range found {
			names[i] = strconv.Quote(s.Name)
		}
		return "", fmt.Errorf("VCAP_SERVICES binds %d %s services (%s): bind one, or set %s",
			len(found), b.what, strings.Join(names, ", "), config.EnvName(b.key))
	}
	s := found[0]
	u, err := b.credentialsURL(s.Credentials)
	if err != nil {
		return "", fmt.Errorf("VCAP_SERVICES: %s service %q (label %q): %w", b.what, s.Name, s.Label, err)
	}
	return u, nil
}

// credentialsURL reads a URL from a binding's credentials: "uri" or "url",
// else host/hostname, port, username, password and name/database.
func (b platformBinding) credentialsURL(cred map[string]any) (string, error) {
	for _, field := range []string{"uri", "url"} {
		v, ok := cred[field]
		if !ok {
			continue
		}
		s, _ := v.(string)
		// The value holds a password: it never goes into an error.
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("credentials.%s is not a URL", field)
		}
		if !slices.Contains(b.schemes, u.Scheme) {
			return "", fmt.Errorf("credentials.%s is a %s:// URL, want %s://", field, u.Scheme, strings.Join(b.schemes, ":// or "))
		}
		return s, nil
	}
	host := credString(cred, "host", "hostname")
	if host == "" {
		return "", errors.New("credentials have no uri, url or host")
	}
	port := credString(cred, "port")
	if port == "" {
		port = strconv.Itoa(b.port)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", errors.New("credentials.port is not a TCP port number")
	}
	u := url.URL{Scheme: b.schemes[0], Host: net.JoinHostPort(host, port)}
	user, password := credString(cred, "username", "user"), credString(cred, "password")
	if user != "" || password != "" {
		u.User = url.UserPassword(user, password)
	}
	if b.withDB {
		if name := credString(cred, "name", "database", "dbname"); name != "" {
			u.Path = "/" + name
		}
	}
	return u.String(), nil
}

// credString returns the first of the fields present, as a string (ports
// come as numbers or strings).
func credString(cred map[string]any, fields ...string) string {
	for _, f := range fields {
		switch v := cred[f].(type) {
		case string:
			if v != "" {
				return v
			}
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return ""
}
