// Package config is airship's configuration: every key declared once, as
// a field of Config with its tags; reading it from config.yaml, AIRSHIP_*
// environment variables and command-line flags, each overriding the one
// before; checking every value against its key's rule; and showing it
// with every secret masked. What the keys mean together (which modules
// need which backends) is the module table's, in app.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is airship's whole configuration. It is read once, from
// config.yaml, then AIRSHIP_* environment variables, then command-line
// flags, each overriding the one before.
//
// Each field declares everything about its key in its tags, and nothing
// else repeats it: key (the name in config.yaml; the environment variable
// is EnvName(key) and the flag --key with "-" for "_"), default, help,
// validate (go-playground/validator rules), secret ("url": masked in the
// log; "list": only counted) and scope ("all": a flag of every command
// that opens the backends; otherwise of serve only). config.yaml and the
// README's table list the same keys; a test keeps them in step.
type Config struct {
	Addr string `key:"addr" default:":8000" validate:"required,listen_addr" help:"listen address of the API"`

	PostgresURL string `key:"postgres_url" secret:"url" scope:"all" validate:"omitempty,postgres_url" help:"PostgreSQL URL or key=value connection string; with redis_url: the production backends"`
	RedisURL    string `key:"redis_url" secret:"url" scope:"all" validate:"omitempty,redis_url" help:"Redis URL; with postgres_url: the production backends"`
	RedisMode   string `key:"redis_mode" default:"auto" scope:"all" validate:"oneof=auto single cluster sentinel" help:"auto (the server's INFO cluster decides), single, cluster or sentinel: how redis_url is read"`
	RedisPrefix string `key:"redis_prefix" default:"airship:" scope:"all" validate:"redis_prefix" help:"prefix of every Redis key: up to 64 of A-Z a-z 0-9 . _ : / -"`
	DataDir     string `key:"data_dir" default:"./data" scope:"all" validate:"required" help:"directory of the embedded store (used when neither backend URL is set)"`

	ProductImageRoot string `key:"product_image_root" default:"http://www.example.com/airship/images" validate:"required" help:"URL prefix of the image of every order line"`

	BodyLimit          int64         `key:"body_limit" default:"1048576" validate:"gt=0" help:"largest request body in bytes; larger gets 413"`
	RequestTimeout     time.Duration `key:"request_timeout" default:"2s" validate:"gt=0" help:"backend work of one request; then 503"`
	BackendTimeout     time.Duration `key:"backend_timeout" default:"1s" validate:"gt=0" help:"dial, read and write timeout of each backend call"`
	StartupTimeout     time.Duration `key:"startup_timeout" default:"30s" validate:"gte=0" help:"how long unreachable backends are retried at start"`
	ShutdownTimeout    time.Duration `key:"shutdown_timeout" default:"15s" validate:"gt=0" help:"grace for in-flight requests on SIGTERM"`
	ReservationTimeout time.Duration `key:"reservation_timeout" default:"1m" validate:"gtfield=RequestTimeout" help:"how long taken stock waits for its order to commit; longer than request_timeout"`
	RecoveryInterval   time.Duration `key:"recovery_interval" default:"30s" validate:"gt=0" help:"period of the recovery sweep"`
	IdempotencyTTL     time.Duration `key:"idempotency_ttl" default:"24h" validate:"gt=0" help:"how long an Idempotency-Key is remembered"`

	APIKeys []string `key:"api_keys" secret:"list" validate:"dive,api_key" help:"comma-separated bearer keys (each 16 to 256 visible ASCII characters, no comma); when set, every write needs one"`

	AMQPURL         string        `key:"amqp_url" secret:"url" validate:"omitempty,amqp_url" help:"RabbitMQ URL (amqp:// or amqps://); when set, order events are published through the outbox (off when empty)"`
	EventsExchange  string        `key:"events_exchange" default:"orders.events" validate:"required,max=255,printascii" help:"topic exchange the order events are published to"`
	EventsBatchSize int           `key:"events_batch_size" default:"100" validate:"gt=0,lte=10000" help:"most events the relay publishes in one round"`
	EventsInterval  time.Duration `key:"events_interval" default:"1s" validate:"gt=0" help:"how often the relay looks for events written by other replicas (its own wake it at once)"`
	EventsRetention time.Duration `key:"events_retention" default:"24h" validate:"gt=0" help:"how long published events stay in the outbox"`

	PostgresMaxConns int `key:"postgres_max_conns" default:"16" validate:"gt=0" help:"PostgreSQL pool size"`
	RedisPoolSize    int `key:"redis_pool_size" default:"32" validate:"gt=0" help:"Redis pool size"`

	Modules     []string `key:"modules" default:"all" validate:"required,dive,required" help:"modules this process runs: all, or a comma-separated list of gateway, products, orders; a module it calls that runs elsewhere is reached at its URL (a build with -tags remote)"`
	ProductsURL string   `key:"products_url" validate:"omitempty,module_url" help:"URL of the products module when it runs in another process (modules gateway or orders)"`
	OrdersURL   string   `key:"orders_url" validate:"omitempty,module_url" help:"URL of the orders module when it runs in another process (modules gateway)"`
	ModuleToken string   `key:"module_token" secret:"token" validate:"omitempty,module_token" help:"secret the modules in separate processes share (32 to 1024 visible ASCII characters): sent with every module call, and required by modules products and orders"`
	ModuleAuth  string   `key:"module_auth" default:"required" validate:"oneof=required optional" help:"required: modules products and orders refuse calls without module_token; optional: they also take calls that carry no token (a rolling upgrade from a release without it); a wrong token is always refused"`

	LogLevel  string `key:"log_level" default:"info" scope:"all" validate:"oneof=debug info warn error" help:"debug, info, warn or error"`
	LogFormat string `key:"log_format" default:"json" scope:"all" validate:"oneof=json text" help:"json or text"`
	AccessLog string `key:"access_log" default:"errors" validate:"access_log" help:"successful requests logged at info: all, errors (none) or sample:N (one in N); refusals and errors always are"`
	DebugAddr string `key:"debug_addr" validate:"omitempty,listen_addr" help:"serve pprof on this separate address (off when empty)"`

	MetricsAddr string `key:"metrics_addr" default:":9464" validate:"omitempty,listen_addr" help:"serve Prometheus metrics on /metrics of this separate address (off when empty)"`
}

// HealthcheckTimeout is how long `airship healthcheck` waits for /readyz
// by default; a container's health check must allow it more.
const HealthcheckTimeout = 3 * time.Second

// Limits of API keys.
const (
	MinAPIKeyLength = 16
	maxAPIKeyLength = 256
)

// field is one configuration key, as its Config field declares it.
type field struct {
	key, def, help, secret, scope string
	index                         int
}

// fields lists the keys in declaration order.
var fields = func() []field {
	t := reflect.TypeFor[Config]()
	out := make([]field, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		out = append(out, field{
			key: f.Tag.Get("key"), def: f.Tag.Get("default"), help: f.Tag.Get("help"),
			secret: f.Tag.Get("secret"), scope: f.Tag.Get("scope"), index: i,
		})
	}
	return out
}()

// Keys returns every configuration key, sorted.
func Keys() []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	sort.Strings(keys)
	return keys
}

// flagText is a given flag's value as the text of an environment
// variable: a list flag's entries joined with commas.
func flagText(f *pflag.Flag) string {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return strings.Join(sv.GetSlice(), ",")
	}
	return f.Value.String()
}

// EnvName is the environment variable that sets a configuration key.
func EnvName(key string) string { return "AIRSHIP_" + strings.ToUpper(key) }

// FlagName is the command-line flag that sets a configuration key.
func FlagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

// newViper returns a viper that knows every key and its default; viper
// only reads environment variables for keys it knows.
func newViper() *viper.Viper {
	v := viper.New()
	for _, f := range fields {
		v.SetDefault(f.key, f.def)
	}
	return v
}

// decode reads settings (key → value) into a Config, each value by the
// rule of its field's type (see strictValue), and returns a sentence
// naming the key for every value that breaks it and every unknown key.
func decode(settings map[string]any) (Config, []string) {
	var c Config
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:     "key",
		ErrorUnused: true,
		DecodeHook:  strictValue,
		Result:      &c,
	})
	if err != nil {
		panic(err) // the configuration above is wrong
	}
	return c, decodeProblems(d.Decode(settings))
}

// Defaults returns the configuration with every default value.
func Defaults() Config {
	c, problems := decode(newViper().AllSettings())
	if len(problems) > 0 {
		panic(fmt.Sprintf("config defaults: %s", strings.Join(problems, "; "))) // the tags above are wrong
	}
	return c
}

// AddFlags adds a flag for each configuration key: every key for serve,
// the keys of scope "all" for the other commands.
func AddFlags(fs *pflag.FlagSet, serve bool) {
	for _, f := range fields {
		if !serve && f.scope != "all" {
			continue
		}
		help := f.help
		if f.def != "" {
			help += " (default " + f.def + ")"
		}
		help += "; env " + EnvName(f.key)
		if f.secret != "" {
			help += " (or a file: " + FileEnvName(f.key) + ")"
		}
		// Typed flags: --help names each one's type, and a value that is
		// not one is a usage error. The default is the key's, shown in
		// the help, not the flag's: an unset flag leaves the key to the
		// file and the environment.
		name := FlagName(f.key)
		switch t := reflect.TypeFor[Config]().Field(f.index).Type; {
		case t == durationType:
			fs.Duration(name, 0, help)
		case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
			fs.Int(name, 0, help) // as text to decode, which checks the field's size
		case t.Kind() == reflect.Bool:
			fs.Bool(name, false, help)
		case t.Kind() == reflect.Slice:
			fs.StringSlice(name, nil, help)
		default:
			fs.String(name, "", help)
		}
	}
}

// Platform fills in keys from what a platform tells the process (Cloud
// Foundry's $PORT and $VCAP_SERVICES, see internal/cfenv), where the
// configuration leaves them unset: explicitlySet reports whether the
// file, an AIRSHIP_* variable or a flag sets a key.
type Platform func(c *Config, explicitlySet func(key string) bool) error

// Load reads the configuration; Validate checks it (once, where it is
// used: app checks it with the modules' needs). configFile may be empty:
// then ./config.yaml is read if it exists. flags, if not nil, override:
// each flag given on the command line (Changed) is named like its key
// with "-" for "_" (see AddFlags). platform, if not nil, fills in keys the
// three leave unset.
//
// A value means the same and breaks the same rule whichever of the three
// gives it: the file's scalars are read as their text, like the
// environment's and the flags'. The file is checked whole, even where the
// environment or a flag overrides a key, and a key it does not know is an
// error; so is an AIRSHIP_* variable a letter or two from a key's (see
// UnknownEnv). A secret key may instead be read from the file its
// FileEnvName variable names (see readSecretFiles).
func Load(configFile string, flags *pflag.FlagSet, platform Platform) (Config, error) {
	file, err := readConfigFile(configFile)
	if err != nil {
		return Config{}, err
	}
	if typos, _ := UnknownEnv(os.Environ()); len(typos) > 0 {
		return Config{}, fmt.Errorf("invalid configuration: %s", strings.Join(typos, "; "))
	}
	v := newViper()
	if err := v.MergeConfigMap(file); err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	v.SetEnvPrefix("AIRSHIP")
	v.AutomaticEnv()
	given := func(key string) *pflag.Flag {
		if flags == nil {
			return nil
		}
		if f := flags.Lookup(FlagName(key)); f != nil && f.Changed {
			return f
		}
		return nil
	}
	for _, f := range fields {
		if fl := given(f.key); fl != nil {
			// As text, like the environment's values: the flag's type
			// has checked its form, decode checks its rule.
			v.Set(f.key, flagText(fl))
		}
	}
	fromFile, err := readSecretFiles(v, given)
	if err != nil {
		return Config{}, err
	}
	c, problems := decode(v.AllSettings())
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("invalid configuration: %s", strings.Join(problems, "; "))
	}
	if platform != nil {
		explicitlySet := func(key string) bool {
			return v.InConfig(key) || os.Getenv(EnvName(key)) != "" || given(key) != nil || fromFile[key]
		}
		if err := platform(&c, explicitlySet); err != nil {
			return Config{}, err
		}
	}
	// viper takes an empty environment variable for an unset one; an empty
	// AIRSHIP_METRICS_ADDR means "no metrics listener", unless a flag says
	// otherwise.
	if e, ok := os.LookupEnv(EnvName("metrics_addr")); ok && e == "" && given("metrics_addr") == nil {
		c.MetricsAddr = ""
	}
	c.normalize()
	return c, nil
}

// FileEnvName is the environment variable that names a file holding a
// secret key's value (AIRSHIP_POSTGRES_URL_FILE), the convention of
// Docker and Kubernetes secrets mounted as files.
func FileEnvName(key string) string { return EnvName(key) + "_FILE" }

// SecretKeys returns the keys whose values are secrets (see the secret
// tag), sorted: the keys that can also be read from a file named by
// FileEnvName.
func SecretKeys() []string {
	var keys []string
	for _, f := range fields {
		if f.secret != "" {
			keys = append(keys, f.key)
		}
	}
	sort.Strings(keys)
	return keys
}

// readSecretFiles sets each secret key whose FileEnvName variable is set
// to the contents of that file, less trailing line ends; a list key's
// file may hold one entry a line. It refuses a key set both ways (by the
// config file, its AIRSHIP_* variable or its flag, and by a file), an
// unreadable file and an empty one, naming the variable and the path but
// never the contents. It reports which keys it set.
func readSecretFiles(v *viper.Viper, given func(key string) *pflag.Flag) (map[string]bool, error) {
	set := map[string]bool{}
	var problems []string
	for _, f := range fields {
		if f.secret == "" {
			continue
		}
		fileVar := FileEnvName(f.key)
		path := os.Getenv(fileVar)
		if path == "" {
			continue
		}
		var other string
		switch {
		case given(f.key) != nil:
			other = "--" + FlagName(f.key)
		case os.Getenv(EnvName(f.key)) != "":
			other = EnvName(f.key)
		case v.InConfig(f.key):
			other = f.key + " in the config file"
		}
		if other != "" {
			problems = append(problems, fmt.Sprintf("%s and %s are both set: set %s in one place", other, fileVar, f.key))
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is named below, once
			}
			problems = append(problems, fmt.Sprintf("%s: cannot read %s: %v", fileVar, path, err))
			continue
		}
		value := strings.TrimRight(string(raw), "\r\n")
		if value == "" {
			problems = append(problems, fmt.Sprintf("%s: %s is empty", fileVar, path))
			continue
		}
		if f.secret == "list" {
			value = strings.ReplaceAll(strings.ReplaceAll(value, "\r\n", "\n"), "\n", ",")
		}
		v.Set(f.key, value)
		set[f.key] = true
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("invalid configuration: %s", strings.Join(problems, "; "))
	}
	return set, nil
}

// readConfigFile reads configFile, or ./config.yaml if configFile is
// empty and that file exists, and checks it: every key must be one of
// Config's and every value must read as its key's type. It returns what
// the file sets, key → value, empty when there is no file.
func readConfigFile(configFile string) (map[string]any, error) {
	v := viper.New()
	if configFile != "" {
		v.SetConfigFile(configFile)
	} else {
		v.SetConfigName("config")
		v.SetConfigType("yaml")
		v.AddConfigPath(".")
	}
	if err := v.ReadInConfig(); err != nil {
		var notFound viper.ConfigFileNotFoundError
		if configFile != "" || !errors.As(err, &notFound) {
			return nil, fmt.Errorf("read config: %w", err)
		}
		return map[string]any{}, nil
	}
	settings := v.AllSettings()
	var problems []string
	known := Keys()
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		if _, ok := slices.BinarySearch(known, k); !ok {
			problems = append(problems, fmt.Sprintf("unknown key %q%s", k, didYouMean(k, strings.TrimPrefix(k, "airship_"), "")))
			delete(settings, k)
		}
	}
	_, wrong := decode(settings)
	if problems = append(problems, wrong...); len(problems) > 0 {
		return nil, fmt.Errorf("config file %s: %s", v.ConfigFileUsed(), strings.Join(problems, "; "))
	}
	return settings, nil
}

// UnknownEnv sorts the AIRSHIP_* variables of environ that are no key's:
// typos, one or two letters from a key's variable (AIRSHIP_API_KEY for
// AIRSHIP_API_KEYS), each as a sentence that names both, and the others,
// by name. A secret key's file variable (AIRSHIP_API_KEYS_FILE) is a
// key's; the file variable of a key that is not secret (AIRSHIP_ADDR_FILE)
// is a typo. The variables Kubernetes sets for a Service named airship
// (AIRSHIP_SERVICE_HOST, AIRSHIP_PORT_8000_TCP, …) are neither.
func UnknownEnv(environ []string) (typos, unknown []string) {
	known, secret := Keys(), SecretKeys()
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		rest, ok := strings.CutPrefix(name, "AIRSHIP_")
		if !ok || serviceLinkVar.MatchString(name) {
			continue
		}
		key := strings.ToLower(rest)
		if _, ok := slices.BinarySearch(known, key); ok {
			continue
		}
		if base, ok := strings.CutSuffix(key, "_file"); ok {
			if _, ok := slices.BinarySearch(secret, base); ok {
				continue
			}
			if _, ok := slices.BinarySearch(known, base); ok {
				typos = append(typos, name+" is not a setting of airship: only secret settings are read from files ("+
					strings.Join(fileEnvNames(secret), ", ")+")")
				continue
			}
		}
		if hint := didYouMean(key, key, "AIRSHIP_"); hint != "" {
			typos = append(typos, name+" is not a setting of airship"+hint)
		} else {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(typos)
	slices.Sort(unknown)
	return typos, unknown
}

// fileEnvNames returns the FileEnvName of each key.
func fileEnvNames(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = FileEnvName(k)
	}
	return out
}

// serviceLinkVar matches the variables Kubernetes sets in a pod for each
// Service of its namespace, for the Services airship's chart names
// airship and airship-MODULE.
var serviceLinkVar = regexp.MustCompile(`^AIRSHIP(_[A-Z0-9_]+)?_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$`)

// didYouMean returns " (did you mean KEY?)" for the key nearest to name
// (or to its other spelling alt) if it is a letter or two away, with
// prefix before KEY in capitals (an environment variable) when prefix is
// set; "" when no key is that near.
func didYouMean(name, alt, prefix string) string {
	best, bestDist := "", 3
	for _, k := range Keys() {
		for _, n := range []string{name, alt, strings.ReplaceAll(alt, "-", "_")} {
			if d := levenshtein(n, k); d < bestDist && d <= len(n)/3 {
				best, bestDist = k, d
			}
		}
	}
	switch {
	case best == "":
		return ""
	case prefix != "":
		return " (did you mean " + prefix + strings.ToUpper(best) + "?)"
	}
	return " (did you mean " + best + "?)"
}

// levenshtein is the edit distance between a and b, in bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// valueError is a value that breaks the rule of its key's type, said as
// the end of a sentence that begins with the key.
type valueError string

func (e valueError) Error() string { return string(e) }

var durationType = reflect.TypeFor[time.Duration]()

// strictValue is the decode hook that reads each value by the rule of its
// field's type. Environment variables, flags and defaults are text; a
// config file's values may also be numbers, booleans, lists and mappings:
//
//   - a duration is text with a unit ("5s", "1m"; "0" is zero), and a
//     number in the file is read as its text, so 5 is refused like "5";
//   - a whole number is its decimal text, or a whole number in the file
//     (1.5 and true are refused);
//   - text must be text: a number or boolean in the file would lose its
//     form (0123 is 83 to YAML), so it is refused with "quote it";
//   - a list of text is a list or comma-separated text;
//   - a boolean is true or false (or what strconv.ParseBool reads).
//
// A value a secret may be in is never quoted.
func strictValue(from, to reflect.Value) (any, error) {
	in := from.Interface()
	if to.Type() == durationType {
		s, ok := scalarText(in)
		if !ok {
			return nil, valueError("must be a duration with a unit, such as 5s or 1m, not " + shape(in))
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, valueError(fmt.Sprintf("must be a duration with a unit, such as 5s or 1m, not %q", s))
		}
		return d, nil
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, ok := scalarText(in)
		if !ok {
			return nil, valueError("must be a whole number, not " + shape(in))
		}
		n, err := strconv.ParseInt(s, 10, to.Type().Bits())
		if err != nil {
			return nil, valueError(fmt.Sprintf("must be a whole number, not %q", s))
		}
		return n, nil
	case reflect.Bool:
		s, _ := scalarText(in)
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, valueError("must be true or false")
		}
		return b, nil
	case reflect.String:
		if s, ok := in.(string); ok {
			return s, nil
		}
		if _, ok := scalarText(in); ok {
			return nil, valueError("must be text, not " + shape(in) + ": quote it")
		}
		return nil, valueError("must be text, not " + shape(in))
	case reflect.Slice:
		switch v := in.(type) {
		case string:
			if v == "" {
				return []string{}, nil
			}
			return strings.Split(v, ","), nil
		case []any:
			return v, nil // each entry is checked as text
		}
		return nil, valueError("must be a list or a comma-separated string, not " + shape(in))
	}
	return in, nil
}

// scalarText returns a scalar as the text it would be in an environment
// variable: 5, 1.5 and true as "5", "1.5" and "true".
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}

// shape names the kind of a value that is not what its key takes.
func shape(v any) string {
	switch v.(type) {
	case bool:
		return "true or false"
	case int, int64, uint64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("a %T", v)
}

// decodeProblems turns mapstructure's errors into sentences that begin
// with the key: "request_timeout must be …", "api_keys: entry 2 must be …".
func decodeProblems(err error) []string {
	var problems []string
	var walk func(error)
	walk = func(err error) {
		if de, ok := err.(*mapstructure.DecodeError); ok {
			name := de.Name()
			var i int
			if key, _, ok := strings.Cut(name, "["); ok {
				fmt.Sscanf(name[len(key):], "[%d]", &i)
				name = fmt.Sprintf("%s: entry %d", key, i+1)
			}
			var ve valueError
			if errors.As(de, &ve) {
				problems = append(problems, name+" "+ve.Error())
			} else {
				problems = append(problems, name+": "+de.Unwrap().Error())
			}
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if u := errors.Unwrap(err); u != nil {
			walk(u)
			return
		}
		problems = append(problems, err.Error())
	}
	if err != nil {
		walk(err)
	}
	return problems
}

// normalize trims what people type around values: spaces around API keys
// ("k1, k2") and the case of enumerations.
func (c *Config) normalize() {
	for i, k := range c.APIKeys {
		c.APIKeys[i] = strings.TrimSpace(k)
	}
	for i, m := range c.Modules {
		c.Modules[i] = strings.ToLower(strings.TrimSpace(m))
	}
	c.LogLevel = strings.ToLower(c.LogLevel)
	c.LogFormat = strings.ToLower(c.LogFormat)
	c.AccessLog = strings.ToLower(strings.TrimSpace(c.AccessLog))
}

// Validate checks every key against its rules and the rules between keys,
// and names every problem.
func (c Config) Validate() error {
	var problems []string
	var verrs validator.ValidationErrors
	if err := validate.Struct(c); errors.As(err, &verrs) {
		for _, fe := range verrs {
			problems = append(problems, describe(c, fe))
		}
	} else if err != nil {
		problems = append(problems, err.Error())
	}
	if p := RedisModeProblem(c.RedisURL, c.RedisMode); c.RedisURL != "" && p != "" {
		problems = append(problems, "redis_url: "+p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid configuration: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Events reports whether order events are published (amqp_url is set).
func (c Config) Events() bool { return c.AMQPURL != "" }

// Warnings are what anyone who reaches a process with this configuration
// may do: write through the API without a key (servesAPI: the process
// serves the REST API), or call a module without the module token; and
// that a caller of modules in other processes (callsModules) sends no
// token.
func (c Config) Warnings(servesAPI, callsModules bool) []string {
	var w []string
	if servesAPI && len(c.APIKeys) == 0 {
		w = append(w, "AIRSHIP_API_KEYS is not set: anyone who can reach the API can change products and orders")
	}
	if !servesAPI && c.ModuleAuth == ModuleAuthOptional {
		w = append(w, "module_auth is optional: calls to this module that carry no module token are taken, from anyone who can reach it; "+
			"set module_auth required once every caller sends AIRSHIP_MODULE_TOKEN")
	}
	if callsModules && c.ModuleToken == "" {
		w = append(w, "AIRSHIP_MODULE_TOKEN is not set: calls to other modules carry no token, and a module that requires one refuses them")
	}
	return w
}

// Masked returns the configuration as key/value pairs for the start-up
// log: every key, with secrets masked (see the secret tag).
func (c Config) Masked() []any {
	out := make([]any, 0, 2*len(fields))
	rv := reflect.ValueOf(c)
	for _, f := range fields {
		v := rv.Field(f.index).Interface()
		switch f.secret {
		case "url":
			v = RedactConnString(v.(string))
		case "list":
			v = countKeys(v.([]string))
		case "token":
			v = maskToken(v.(string))
		default:
			switch x := v.(type) {
			case time.Duration:
				v = x.String()
			case []string:
				v = strings.Join(x, ",")
			}
		}
		out = append(out, f.key, v)
	}
	return out
}

// countKeys shows how many API keys are set, never the keys.
func countKeys(keys []string) string {
	switch len(keys) {
	case 0:
		return "(none: writes are open)"
	case 1:
		return "(1 key)"
	}
	return fmt.Sprintf("(%d keys)", len(keys))
}
