package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/internal/backend"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/products"
)

// LegacyOptions say where import-legacy reads and how it writes.
type LegacyOptions struct {
	// From is the old shop's Redis URL, or its Sentinels or Cluster nodes.
	From string
	// Pattern selects the old product keys (a SCAN MATCH pattern).
	Pattern string
	// DryRun reads and checks everything and writes nothing.
	DryRun bool
	// Overwrite replaces the fields of products already there.
	Overwrite bool
	// Batch is how many keys are read per SCAN and written per round trip.
	Batch int
}

// productLoader is how import-legacy and import write products.
type productLoader interface {
	Load(ctx context.Context, ps []products.Product, mode products.LoadMode) ([]products.Loaded, error)
}

// legacyFields are the fields of an old product hash.
var legacyFields = []string{"id", "title", "passenger_capacity", "maximum_speed", "in_stock"}

// legacyReport counts what import-legacy did and lists what it did not.
type legacyReport struct {
	keys                                      int
	imported, equal, conflicting, overwritten int
	conflicts, rejected                       []string
}

// ImportLegacy copies the old shop's products from the Redis at
// opts.From into the products store open opens (cfg is the configuration
// of the Redis connection: its TLS and timeouts), reporting on out and its
// progress on progressOut.
func ImportLegacy(ctx context.Context, cfg config.Config, open Opener, opts LegacyOptions, out, progressOut io.Writer) error {
	src, err := openLegacyRedis(ctx, cfg, opts.From)
	if err == nil {
		defer src.Close()
		err = backend.PingRedis(ctx, src)
	}
	if err != nil {
		return fmt.Errorf("import-legacy: the old shop's Redis at %s: %w", config.RedactConnString(opts.From), err)
	}
	nodes, err := scanNodes(ctx, src)
	if err != nil {
		return fmt.Errorf("import-legacy: the old shop's Redis at %s: %w", config.RedactConnString(opts.From), err)
	}
	b, err := open(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	store := b.Products
	if store == nil {
		return errors.New("import-legacy: the configured product store cannot load products")
	}

	mode := products.LoadMode{Overwrite: opts.Overwrite, DryRun: opts.DryRun}
	keyPrefix := globPrefix(opts.Pattern)
	var r legacyReport
	seen := map[string]bool{} // SCAN may return a key twice
	bar := startProgress(progressOut, "import-legacy", -1)
	for _, node := range nodes {
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, opts.Pattern, int64(opts.Batch)).Result()
			if err != nil {
				bar.Finish()
				return fmt.Errorf("import-legacy: scan the old shop's Redis: %w", err)
			}
			keys = slices.DeleteFunc(keys, func(k string) bool { dup := seen[k]; seen[k] = true; return dup })
			if err := r.batch(ctx, src, store, keys, keyPrefix, mode); err != nil {
				bar.Finish()
				return fmt.Errorf("import-legacy: %w (%d keys done; running it again resumes: what is there is skipped)", err, r.keys)
			}
			bar.Add(len(keys))
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	bar.Finish()
	r.print(out, opts)
	if n := len(r.rejected) + len(r.conflicts); n > 0 {
		return fmt.Errorf("import-legacy: %d products not imported: %d conflicting, %d rejected (listed above)",
			n, len(r.conflicts), len(r.rejected))
	}
	return nil
}

// openLegacyRedis opens the old shop's Redis at from, with the timeouts of
// cfg: Sentinels when from names a master_name (which one of them must
// monitor), else one server or a cluster, as the server says (see
// DetectRedisMode).
func openLegacyRedis(ctx context.Context, cfg config.Config, from string) (redis.UniversalClient, error) {
	cfg.RedisURL = from
	mode := "sentinel"
	if o, err := redis.ParseFailoverURL(from); err != nil || o.MasterName == "" {
		if mode, err = backend.DetectRedisMode(ctx, cfg); errors.Is(err, backend.ErrSentinelURL) {
			return nil, errors.New("it is a Sentinel: add master_name=NAME (the name the Sentinels monitor) to --from")
		} else if err != nil {
			return nil, err
		}
	} else if err := backend.CheckSentinels(ctx, cfg); err != nil {
		return nil, err
	}
	return backend.Redis(cfg, mode)
}

// scanNodes returns the servers whose keys SCAN lists: every master of a
// cluster (each holds a share of the keys), else the one server.
func scanNodes(ctx context.Context, rdb redis.UniversalClient) ([]redis.Cmdable, error) {
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return []redis.Cmdable{rdb}, nil
	}
	var (
		mu      sync.Mutex
		masters []redis.Cmdable
	)
	err := c.ForEachMaster(ctx, func(_ context.Context, node *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters = append(masters, node)
		return nil
	})
	return masters, err
}

// legacyMaxBytes is the longest value each field of an old product hash
// may have to be read at all: a longer one breaks the field's rule
// whatever it holds (at most 128 ASCII characters for an id, 512
// characters of up to 4 bytes for a title, 10 digits for a count, with
// room to name what is wrong with a sign or leading zeros).
var legacyMaxBytes = map[string]int64{
	"id": products.MaxIDLength, "title": 4 * products.MaxTitleLength,
	"passenger_capacity": 32, "maximum_speed": 32, "in_stock": 32,
}

// legacyReadBytes bounds the values one round trip of import-legacy
// reads: keys are read in groups whose known fields add up to at most
// this (each key at most about 2 KiB, by legacyMaxBytes).
const legacyReadBytes = 4 << 20

// legacyMaxExtra is how many fields beyond the product's a hash may have
// for import-legacy to name them.
const legacyMaxExtra = 16

// legacyHash is what import-legacy learns of a key before reading it.
type legacyHash struct {
	key    string
	fields int64            // how many fields the hash has
	sizes  map[string]int64 // the length of each product field (0: absent)
}

// batch checks the hashes of keys and loads the valid ones into store. It
// first asks for the number of fields of each hash and the length of each
// product field (one round trip), refuses a hash with a value too long for
// its field without reading it, then reads the others' product fields
// (HMGET, legacyReadBytes at most a round trip).
func (r *legacyReport) batch(ctx context.Context, src redis.UniversalClient, store products.BulkStore, keys []string, keyPrefix string, mode products.LoadMode) error {
	if len(keys) == 0 {
		return nil
	}
	pipe := src.Pipeline()
	lens := make([]*redis.IntCmd, len(keys))
	sizes := make([][]*redis.IntCmd, len(keys))
	for i, k := range keys {
		lens[i] = pipe.HLen(ctx, k)
		for _, f := range legacyFields {
			sizes[i] = append(sizes[i], pipe.HStrLen(ctx, k, f))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !isWrongType(err) {
		return fmt.Errorf("read the old shop's products: %w", err)
	}
	var (
		toRead []legacyHash
		size   int64 // of toRead
		valid  []products.Product
		keysOf []string
	)
	flush := func() error {
		ps, ks, err := r.read(ctx, src, toRead, keyPrefix)
		valid, keysOf = append(valid, ps...), append(keysOf, ks...)
		toRead, size = nil, 0
		return err
	}
	for i, k := range keys {
		r.keys++
		n, err := lens[i].Result()
		switch {
		case isWrongType(err):
			r.rejected = append(r.rejected, shown(k)+": not a hash")
			continue
		case err != nil:
			return fmt.Errorf("read %s: %w", shown(k), err)
		case n == 0:
			continue // deleted since SCAN saw it
		}
		h := legacyHash{key: k, fields: n, sizes: map[string]int64{}}
		var long []string
		for j, f := range legacyFields {
			size, err := sizes[i][j].Result()
			if err != nil {
				return fmt.Errorf("read %s: %w", shown(k), err)
			}
			h.sizes[f] = size
			if size > legacyMaxBytes[f] {
				long = append(long, fmt.Sprintf("%s: %d bytes: %s", f, size, legacyRule(f)))
			}
		}
		if long != nil {
			r.rejected = append(r.rejected, shown(k)+": "+strings.Join(long, "; "))
			continue
		}
		if len(toRead) > 0 && size+h.bytes() > legacyReadBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		toRead, size = append(toRead, h), size+h.bytes()
	}
	if err := flush(); err != nil {
		return err
	}
	loaded, err := store.Load(ctx, valid, mode)
	if err != nil {
		return err
	}
	var conflicting []int
	for i, l := range loaded {
		switch l {
		case products.Created:
			r.imported++
		case products.Equal:
			r.equal++
		case products.Conflicting:
			r.conflicting++
			conflicting = append(conflicting, i)
		case products.Overwritten:
			r.overwritten++
		}
	}
	return r.describeConflicts(ctx, store, valid, keysOf, conflicting)
}

// bytes is how many bytes reading h's product fields reads.
func (h legacyHash) bytes() int64 {
	var n int64
	for _, size := range h.sizes {
		n += size
	}
	return n
}

// legacyRule is what the rule of a product field asks of its value.
func legacyRule(field string) string {
	switch field {
	case "id":
		return products.IDProblem("")
	case "title":
		return products.TitleProblem("")
	default:
		_, problem := products.ParseCount("-1", 0)
		return problem
	}
}

// read reads the product fields of hashes (and the names of other fields
// a hash has, when there are few) in one round trip and checks each; it
// returns the valid products and their keys, and lists the others as
// rejected.
func (r *legacyReport) read(ctx context.Context, src redis.UniversalClient, hashes []legacyHash, keyPrefix string) ([]products.Product, []string, error) {
	if len(hashes) == 0 {
		return nil, nil, nil
	}
	pipe := src.Pipeline()
	values := make([]*redis.SliceCmd, len(hashes))
	names := make([]*redis.StringSliceCmd, len(hashes))
	for i, h := range hashes {
		values[i] = pipe.HMGet(ctx, h.key, legacyFields...)
		if present := h.present(); h.fields > present && h.fields <= present+legacyMaxExtra {
			names[i] = pipe.HKeys(ctx, h.key)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !isWrongType(err) {
		return nil, nil, fmt.Errorf("read the old shop's products: %w", err)
	}
	var (
		valid  []products.Product
		keysOf []string
	)
	for i, h := range hashes {
		vals, err := values[i].Result()
		if err != nil {
			if isWrongType(err) { // replaced since
				r.rejected = append(r.rejected, shown(h.key)+": not a hash")
				continue
			}
			return nil, nil, fmt.Errorf("read %s: %w", shown(h.key), err)
		}
		fields := map[string]string{}
		for j, v := range vals {
			if v, ok := v.(string); ok {
				fields[legacyFields[j]] = v
			}
		}
		var (
			extra   []string
			unnamed int64
		)
		switch {
		case names[i] != nil:
			all, err := names[i].Result()
			if err != nil && !isWrongType(err) {
				return nil, nil, fmt.Errorf("read %s: %w", shown(h.key), err)
			}
			for _, name := range all {
				if !slices.Contains(legacyFields, name) {
					extra = append(extra, name)
				}
			}
		case h.fields > h.present():
			unnamed = h.fields - h.present()
		}
		if len(fields) == 0 && extra == nil && unnamed == 0 {
			continue // deleted since
		}
		p, problems := legacyProduct(h.key, keyPrefix, fields, extra, unnamed)
		if len(problems) > 0 {
			r.rejected = append(r.rejected, shown(h.key)+": "+strings.Join(problems, "; "))
			continue
		}
		valid = append(valid, p)
		keysOf = append(keysOf, h.key)
	}
	return valid, keysOf, nil
}

// present is how many of the product fields h has.
func (h legacyHash) present() int64 {
	var n int64
	for _, size := range h.sizes {
		if size > 0 {
			n++
		}
	}
	return n
}

// describeConflicts lists how each conflicting product differs from the
// one airship has.
func (r *legacyReport) describeConflicts(ctx context.Context, store products.Store, ps []products.Product, keys []string, which []int) error {
	if len(which) == 0 {
		return nil
	}
	ids := make([]string, len(which))
	for i, j := range which {
		ids[i] = ps[j].ID
	}
	there, err := store.GetMany(ctx, ids)
	if err != nil {
		return err
	}
	for _, j := range which {
		old, cur := ps[j], there[ps[j].ID]
		var diffs []string
		if cur.Title != old.Title {
			diffs = append(diffs, fmt.Sprintf("title %s here, %s in the old shop", quoted(cur.Title), quoted(old.Title)))
		}
		for _, f := range []struct {
			name      string
			cur, from int64
		}{
			{"passenger_capacity", cur.PassengerCapacity, old.PassengerCapacity},
			{"maximum_speed", cur.MaximumSpeed, old.MaximumSpeed},
			{"in_stock", cur.InStock, old.InStock},
		} {
			if f.cur != f.from {
				diffs = append(diffs, fmt.Sprintf("%s %d here, %d in the old shop", f.name, f.cur, f.from))
			}
		}
		if len(diffs) == 0 {
			diffs = append(diffs, "deleted here meanwhile")
		}
		r.conflicts = append(r.conflicts, shown(keys[j])+": "+strings.Join(diffs, "; "))
	}
	return nil
}

// legacyProduct reads an old product hash with the API's rules: the five
// fields (of fields) and no other (extra names the others, unnamed counts
// those too many to name), the id the key names, and each value valid.
func legacyProduct(key, keyPrefix string, fields map[string]string, extra []string, unnamed int64) (products.Product, []string) {
	var problems []string
	for _, name := range legacyFields {
		if _, ok := fields[name]; !ok {
			problems = append(problems, name+": is missing")
		}
	}
	slices.Sort(extra)
	for _, name := range extra {
		problems = append(problems, quoted(name)+": not a product field")
	}
	if unnamed > 0 {
		problems = append(problems, fmt.Sprintf("%d other fields: not product fields", unnamed))
	}
	if len(problems) > 0 {
		return products.Product{}, problems
	}
	p := products.Product{ID: fields["id"], Title: fields["title"]}
	if key != keyPrefix+p.ID {
		problems = append(problems, fmt.Sprintf("id: %s does not match the key", quoted(p.ID)))
	}
	for _, c := range []struct {
		name string
		dst  *int64
	}{{"passenger_capacity", &p.PassengerCapacity}, {"maximum_speed", &p.MaximumSpeed}, {"in_stock", &p.InStock}} {
		n, problem := products.ParseCount(fields[c.name], 0)
		if problem != "" {
			problems = append(problems, fmt.Sprintf("%s: %s %s", c.name, quoted(fields[c.name]), problem))
		}
		*c.dst = n
	}
	if problems == nil {
		problems = p.Problems()
	}
	return p, problems
}

// globPrefix is the part of a SCAN pattern before its first glob
// character: the key of a product is that prefix and its id.
func globPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

// shownMost is how many bytes of a key, field name or value the report
// shows.
const shownMost = 256

// shown is a key as the report shows it: as it is when it is printable
// UTF-8 (so that a key pasted from the report names it), else quoted with
// Go's escapes, so that no control character reaches the terminal; at
// most shownMost bytes of it.
func shown(s string) string {
	s, more := clipShown(s)
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		s = strconv.Quote(s)
	}
	return s + more
}

// quoted is a field name or value as the report shows it: quoted with
// Go's escapes, at most shownMost bytes of it.
func quoted(s string) string {
	s, more := clipShown(s)
	return strconv.Quote(s) + more
}

func clipShown(s string) (string, string) {
	if len(s) <= shownMost {
		return s, ""
	}
	return s[:shownMost], fmt.Sprintf("… (%d bytes)", len(s))
}

func isWrongType(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE")
}

func (r *legacyReport) print(out io.Writer, opts LegacyOptions) {
	verb, note := "imported", ""
	if opts.DryRun {
		verb, note = "would be imported", " (dry run: nothing was written)"
	}
	fmt.Fprintf(out, "import-legacy from %s, keys %q: %d keys%s\n", config.RedactConnString(opts.From), opts.Pattern, r.keys, note)
	fmt.Fprintf(out, "  %-27s %d\n", verb+":", r.imported)
	fmt.Fprintf(out, "  %-27s %d\n", "already present and equal:", r.equal)
	if opts.Overwrite {
		fmt.Fprintf(out, "  %-27s %d\n", "overwritten:", r.overwritten)
	} else {
		fmt.Fprintf(out, "  %-27s %d (left as they are; --overwrite replaces them)\n", "conflicting:", r.conflicting)
	}
	fmt.Fprintf(out, "  %-27s %d\n", "rejected:", len(r.rejected))
	for _, list := range []struct {
		name  string
		lines []string
	}{{"conflicting", r.conflicts}, {"rejected", r.rejected}} {
		if len(list.lines) == 0 {
			continue
		}
		fmt.Fprintf(out, "%s:\n", list.name)
		slices.Sort(list.lines)
		for _, l := range list.lines {
			fmt.Fprintf(out, "  %s\n", l)
		}
	}
}
