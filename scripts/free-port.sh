#!/usr/bin/env bash
# free-port.sh: prints a loopback TCP port that a listener can bind now.
#
# The port lies below the kernel's ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range), where no outgoing connection
# can hold it, and is probed by binding it as airship's listener will
# (SO_REUSEADDR): a connect probe would call a port free that a client
# socket in TIME_WAIT still holds, and airship's bind would then fail.
#
#   FREE_PORT_MIN  [10000]                          lowest port to pick
#   FREE_PORT_MAX  [start of the ephemeral range - 1] highest port to pick
set -euo pipefail

ephemeral_low=32768
if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
  read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range
fi
min=${FREE_PORT_MIN:-10000}
max=${FREE_PORT_MAX:-$((ephemeral_low - 1))}
[ "$min" -le "$max" ] || { echo "free-port.sh: empty range $min-$max" >&2; exit 2; }

perl -MIO::Socket::INET -e '
  my ($min, $max) = @ARGV;
  for (1 .. 200) {
    my $port = $min + int(rand($max - $min + 1));
    my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $port,
                                  Proto => "tcp", Listen => 1, ReuseAddr => 1) or next;
    close $s;
    print "$port\n";
    exit 0;
  }
  print STDERR "free-port.sh: no port in $min-$max can be bound on 127.0.0.1\n";
  exit 1;
' "$min" "$max"
