# The towerps wire schema: every message between scheduler, parameter servers,
# workers, retrieval servers and the CLI is one Envelope (net/README.md).
# Evolve by appending fields and union members only; never renumber or retype.
@0xf952143abbdb66d4;

$import "/capnp/c++.capnp".namespace("towerps::net::wire");

# Sent as the `error` member of a reply: a failed request.
struct Error {
  code @0 :UInt32;     # absl::StatusCode numeric value
  message @1 :Text;    # one line, human readable; never payload bytes
}

# Liveness probe; the reply is a Pong with the same nonce.
struct Ping {
  nonce @0 :UInt64;    # echoed back in Pong
}

struct Pong {
  nonce @0 :UInt64;    # the Ping's nonce
}

struct Envelope {
  version @0 :UInt32;  # wire format version (kWireVersion in net/codec.h)
  sender @1 :Text;     # "<role>/<rank>" of the sender, for logs
  requestId @2 :UInt64; # chosen by the requester; echoed in the reply
  body :union {
    error @3 :Error;   # reply to a request that failed
    ping @4 :Ping;     # request: are you alive
    pong @5 :Pong;     # reply to ping
  }
}
