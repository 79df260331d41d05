package config

// Connection strings: PostgreSQL's two forms (a postgres:// URL and
// libpq's key=value string), checked, completed with airship's defaults,
// and masked for the log.

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// PostgresDSN adds connect_timeout and jit=off to a PostgreSQL URL or
// key=value connection string, unless it sets them.
//
// airship's queries are short index lookups; JIT compilation, which
// PostgreSQL may start when table statistics are stale, only adds tens of
// milliseconds to them.
func PostgresDSN(raw string, timeout time.Duration) (string, error) {
	if p := postgresURLProblem(raw); p != "" {
		return "", fmt.Errorf("postgres_url %s", p)
	}
	connectTimeout := fmt.Sprint(max(1, int(timeout.Seconds())))
	if strings.Contains(raw, "://") {
		u, _ := url.Parse(raw) // checked above
		q := u.Query()
		if !q.Has("connect_timeout") {
			q.Set("connect_timeout", connectTimeout)
		}
		if !q.Has("jit") {
			q.Set("jit", "off")
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	settings, _ := parseKV(raw) // checked above
	has := map[string]bool{}
	for _, s := range settings {
		has[s.key] = true
	}
	if !has["connect_timeout"] {
		raw += " connect_timeout=" + connectTimeout
	}
	if !has["jit"] {
		raw += " jit=off"
	}
	return raw, nil
}

// kv is one setting of a key=value connection string.
type kv struct{ key, value string }

// parseKV parses a libpq key=value connection string: settings separated
// by spaces, each key = value, where a value may be single-quoted (with \'
// and \\ escapes).
func parseKV(s string) ([]kv, error) {
	var out []kv
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	for {
		skip()
		if i == len(s) {
			return out, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		key := s[start:i]
		skip()
		if key == "" || i == len(s) || s[i] != '=' {
			return nil, fmt.Errorf("setting %d has no '='", len(out)+1)
		}
		i++
		skip()
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			for {
				if i == len(s) {
					return nil, fmt.Errorf("the value of %s has no closing quote", key)
				}
				if s[i] == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				if s[i] == '\'' {
					i++
					break
				}
				val.WriteByte(s[i])
				i++
			}
		} else {
			for i < len(s) && s[i] != ' ' && s[i] != '\t' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		out = append(out, kv{key, val.String()})
	}
}

// secretSetting reports whether a connection setting holds a secret.
func secretSetting(name string) bool {
	name = strings.ToLower(name)
	return strings.Contains(name, "password") || strings.Contains(name, "secret") ||
		strings.Contains(name, "token") || name == "sslkey"
}

// redactConnString returns a connection URL or key=value string with every
// secret masked: the password of the user info and every password-like
// query parameter or setting. What cannot be parsed is hidden whole.
func RedactConnString(s string) string {
	const mask = "xxxxx"
	if s == "" {
		return ""
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "(unparsable URL, hidden)"
		}
		q := u.Query()
		for name := range q {
			if secretSetting(name) {
				q.Set(name, mask)
			}
		}
		u.RawQuery = q.Encode()
		return u.Redacted()
	}
	settings, err := parseKV(s)
	if err != nil {
		return "(unparsable connection string, hidden)"
	}
	parts := make([]string, len(settings))
	for i, st := range settings {
		v := st.value
		if secretSetting(st.key) {
			v = mask
		}
		parts[i] = st.key + "=" + quoteKV(v)
	}
	return strings.Join(parts, " ")
}

// quoteKV quotes a key=value connection string value when it needs it.
func quoteKV(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
