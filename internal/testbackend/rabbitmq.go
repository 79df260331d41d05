package testbackend

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const startRabbitMQ = "start RabbitMQ with `rabbitmq-server -detached` (it listens on 127.0.0.1:5672 with guest/guest, " +
	"and rabbitmqctl must be on the PATH), or point AIRSHIP_TEST_AMQP_URL at a broker whose vhosts rabbitmqctl manages"

// AMQPServerURL is the RabbitMQ broker tests make their vhosts on.
func AMQPServerURL() string {
	if u := os.Getenv("AIRSHIP_TEST_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// AMQPURL creates a fresh vhost on the broker (rabbitmqctl add_vhost),
// lets the broker URL's user do everything on it, and returns the URL of
// the vhost; the vhost, with its exchanges and queues, is deleted when
// the test ends.
func AMQPURL(t testing.TB) string {
	t.Helper()
	skipInShortMode(t, "RabbitMQ")
	u, err := url.Parse(AMQPServerURL())
	if err != nil {
		t.Fatalf("AIRSHIP_TEST_AMQP_URL: %v", err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("RabbitMQ at %s is not reachable: %v; %s", u.Host, err, startRabbitMQ)
	}
	c.Close()
	user := u.User.Username()
	if user == "" {
		user = "guest"
	}
	vhost := Name("airship-test-")
	rabbitmqctl(t, "add_vhost", vhost)
	t.Cleanup(func() { rabbitmqctl(t, "delete_vhost", vhost) })
	rabbitmqctl(t, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
	u.Path, u.RawPath = "/"+vhost, ""
	return u.String()
}

// rabbitmqctl runs rabbitmqctl with args and fails the test if it fails.
func rabbitmqctl(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s\n%s", strings.Join(args, " "), err, out, startRabbitMQ)
	}
}
