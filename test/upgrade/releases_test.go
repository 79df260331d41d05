//go:build upgrade

package upgrade

// What the harness knows about particular releases, all of it. Everything
// else drives a release through its public surfaces only, and sets a
// configuration key only when the binary lists it in `serve --help`, so
// that a release from before the key and one after it both start.

// setting is one configuration key with its value.
type setting struct{ key, value string }

// moduleTokenKey and moduleAuthKey are the split modules' authentication:
// a release that has them needs the shared token on every process of a
// split deployment (gateways and orders send it, modules check it). Its
// modules must accept calls without a token (module_auth: optional) while
// a release without authentication calls them; once every release that
// runs together has it, they may require it.
const (
	moduleTokenKey = "module_token"
	moduleAuthKey  = "module_auth"
)

// releaseSettings returns the settings a process of build b running
// modules needs because of what b (and the other builds of the deployment)
// are, beyond the backends and addresses every process gets.
func releaseSettings(b *build, modules, token string, deployment []*build) []setting {
	var out []setting
	if modules != "all" && b.has(modules, moduleTokenKey) {
		out = append(out, setting{moduleTokenKey, token})
		if modules != "gateway" && b.has(modules, moduleAuthKey) {
			mode := "required"
			for _, other := range deployment {
				if !other.has("gateway", moduleTokenKey) {
					mode = "optional" // an older release calls without a token
				}
			}
			out = append(out, setting{moduleAuthKey, mode})
		}
	}
	return out
}

// exportArgs are the arguments of the writer's export for a dump the
// reader loads. The dump format's version 2 came with export
// --dump-version, which writes version 1 for releases that read only it
// (those whose own export has no --dump-version).
func exportArgs(writer, reader *build) []string {
	if writer.exportFlags["dump-version"] && !reader.exportFlags["dump-version"] {
		return []string{"--dump-version", "1"}
	}
	return nil
}

// eventsSchemaVersion is the schema_version header of the event bodies
// that the old-style consumer reads (docs/events.md of 1.0.0).
const eventsSchemaVersion = 1

// publishesEvents reports whether a release writes order events when
// amqp_url is set (releases before 1.0.0 had no events).
func publishesEvents(b *build, modules string) bool { return b.has(modules, "amqp_url") }
