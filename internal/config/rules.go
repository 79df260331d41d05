package config

import (
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-playground/validator/v10"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// validate checks Config's validate tags; its custom rules are below.
var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string { return f.Tag.Get("key") })
	for tag, fn := range map[string]func(string) bool{
		"postgres_url": func(s string) bool { return postgresURLProblem(s) == "" },
		"redis_url":    func(s string) bool { return RedisURLProblem(s) == "" },
		"module_url":   func(s string) bool { return moduleURLProblem(s) == "" },
		"listen_addr":  func(s string) bool { return listenAddrProblem(s) == "" },
		"redis_prefix": func(s string) bool { return redisPrefixProblem(s) == "" },
		"api_key":      func(s string) bool { return apiKeyProblem(s) == "" },
		"module_token": func(s string) bool { return moduleTokenProblem(s) == "" },
		"amqp_url": func(s string) bool {
			_, err := amqp.ParseURI(s)
			return err == nil
		},
		"access_log": func(s string) bool {
			_, err := AccessLogEvery(s)
			return err == nil
		},
	} {
		if err := v.RegisterValidation(tag, func(fl validator.FieldLevel) bool { return fn(fl.Field().String()) }); err != nil {
			panic(err)
		}
	}
	return v
}()

// describe turns a failed rule into a sentence that names the key and
// never quotes a value that could be a secret.
func describe(c Config, fe validator.FieldError) string {
	key := fe.Field()
	value := fmt.Sprint(fe.Value())
	switch fe.Tag() {
	case "required":
		return key + " must be set"
	case "gt":
		return key + " must be positive"
	case "gte":
		return key + " must not be negative"
	case "lte", "max":
		return fmt.Sprintf("%s must be at most %s", key, fe.Param())
	case "printascii":
		return key + " must be printable ASCII"
	case "amqp_url":
		return key + ": must be an amqp:// or amqps:// URL"
	case "gtfield":
		return key + " must be longer than request_timeout"
	case "oneof":
		return fmt.Sprintf("%s must be one of %s, not %q", key, strings.ReplaceAll(fe.Param(), " ", ", "), value)
	case "postgres_url":
		return key + ": " + postgresURLProblem(value)
	case "redis_url":
		return key + ": " + RedisURLProblem(value)
	case "module_url":
		return key + ": " + moduleURLProblem(value)
	case "listen_addr":
		return key + ": " + listenAddrProblem(value)
	case "redis_prefix":
		return key + ": " + redisPrefixProblem(value)
	case "access_log":
		return fmt.Sprintf("%s must be all, errors or sample:N with N at least 1, not %q", key, value)
	case "module_token":
		return key + " " + moduleTokenProblem(value)
	case "api_key":
		// fe.Field() is "api_keys[i]"; count entries from 1 for people.
		i := 0
		fmt.Sscanf(fe.Field(), "api_keys[%d]", &i)
		return fmt.Sprintf("api_keys: entry %d of %d %s", i+1, len(c.APIKeys), apiKeyProblem(value))
	}
	return fmt.Sprintf("%s fails the rule %s", key, fe.Tag())
}

// apiKeyProblem says what is wrong with an API key, or "".
func apiKeyProblem(k string) string {
	switch {
	case k == "":
		return "is blank (a list like \",\" or \"k1,,k2\" has blank entries)"
	case len(k) < MinAPIKeyLength:
		return fmt.Sprintf("is shorter than %d characters", MinAPIKeyLength)
	case len(k) > maxAPIKeyLength:
		return fmt.Sprintf("is longer than %d characters", maxAPIKeyLength)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "has a character other than visible ASCII"
		}
	}
	return ""
}

// Limits of the module token.
const (
	MinModuleTokenLength = 32
	maxModuleTokenLength = 1024
)

// moduleTokenProblem says what is wrong with a module token, or "". The
// message never quotes it.
func moduleTokenProblem(k string) string {
	if len(k) < MinModuleTokenLength || len(k) > maxModuleTokenLength {
		return fmt.Sprintf("must be %d to %d characters long (it has %d)", MinModuleTokenLength, maxModuleTokenLength, len(k))
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "has a character other than visible ASCII"
		}
	}
	return ""
}

// The values of module_auth.
const (
	ModuleAuthRequired = "required"
	ModuleAuthOptional = "optional"
)

// maskToken shows whether the module token is set, never the token.
func maskToken(token string) string {
	if token == "" {
		return "(none)"
	}
	return "(set)"
}

// redisPrefixProblem says what is wrong with a Redis key prefix, or "".
// Glob characters would make the prefix match other keys (and SCAN MATCH
// find none of airship's), braces would change hash tags.
func redisPrefixProblem(p string) string {
	if len(p) > 64 {
		return "is longer than 64 characters"
	}
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '_', r == ':', r == '/', r == '-':
		default:
			return fmt.Sprintf("has %q: use only A-Z a-z 0-9 . _ : / -", r)
		}
	}
	return ""
}

// postgresURLProblem says what is wrong with a PostgreSQL connection
// string, or "". Both forms lib/pq reads are accepted: a postgres:// URL
// and a key=value string.
func postgresURLProblem(s string) string {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "is not a valid URL"
		}
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			return "must be a postgres:// URL or a key=value connection string"
		}
		return ""
	}
	kv, err := parseKV(s)
	if err != nil {
		return "is not a key=value connection string: " + err.Error()
	}
	if len(kv) == 0 {
		return "is empty"
	}
	return ""
}

// RedisURLProblem says what is wrong with a Redis URL, or "": it must be
// one of the forms go-redis reads (one server, a cluster's seed nodes, or
// Sentinels); redisModeProblem checks it against redis_mode.
func RedisURLProblem(s string) string {
	_, errSingle := redis.ParseURL(s)
	_, errCluster := redis.ParseClusterURL(s)
	_, errSentinel := redis.ParseFailoverURL(s)
	if errSingle != nil && errCluster != nil && errSentinel != nil {
		return "must be a redis://, rediss:// or unix:// URL"
	}
	return ""
}

// RedisModeProblem says what is wrong with a Redis URL in a Redis mode,
// or "".
func RedisModeProblem(s, mode string) string {
	switch mode {
	case "single":
		if _, err := redis.ParseURL(s); err != nil {
			return "in redis_mode single must be the redis://, rediss:// or unix:// URL of one server (" + err.Error() + ")"
		}
	case "cluster":
		if _, err := redis.ParseClusterURL(s); err != nil {
			return "in redis_mode cluster must list seed nodes as redis://HOST:PORT?addr=HOST:PORT&addr=HOST:PORT (" + err.Error() + ")"
		}
		if u, _ := url.Parse(s); strings.Trim(u.Path, "/") != "" && strings.Trim(u.Path, "/") != "0" {
			return "in redis_mode cluster has a database index; a cluster has only database 0"
		}
	case "sentinel":
		o, err := redis.ParseFailoverURL(s)
		if err != nil {
			return "in redis_mode sentinel must list Sentinels as redis://HOST:26379/DB?master_name=NAME&addr=HOST:26379 (" + err.Error() + ")"
		}
		if o.MasterName == "" {
			return "in redis_mode sentinel needs master_name=NAME (the name the Sentinels monitor)"
		}
	case "auto":
		_, errSingle := redis.ParseURL(s)
		_, errCluster := redis.ParseClusterURL(s)
		if errSingle != nil && errCluster != nil {
			return "in redis_mode auto must be a server's URL or a cluster's seed nodes; for Sentinels set redis_mode sentinel"
		}
	}
	return ""
}

// moduleURLProblem says what is wrong with the URL of a module, or "".
func moduleURLProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an http:// or https:// URL such as http://products:8001"
	}
	if u.User != nil {
		return "must not hold a user or password (module calls carry none)"
	}
	return ""
}

// listenAddrProblem says what is wrong with an address to listen on, or "".
func listenAddrProblem(s string) string {
	_, port, err := net.SplitHostPort(s)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		return "must be host:port or :port, such as :8000 or 127.0.0.1:9464"
	}
	return ""
}

// AccessLogEvery reads the access_log setting, which says which
// successful requests are logged at info: 0 none ("errors", the default),
// 1 all ("all"), N one in N ("sample:N").
func AccessLogEvery(s string) (uint64, error) {
	switch s {
	case "", "errors":
		return 0, nil
	case "all":
		return 1, nil
	}
	if n, ok := strings.CutPrefix(s, "sample:"); ok {
		if v, err := strconv.ParseUint(n, 10, 32); err == nil && v >= 1 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("access_log %q: want all, errors or sample:N with N at least 1", s)
}
