# The towerps wire schema: every message between scheduler, parameter servers,
# workers, retrieval servers and the CLI is one Envelope (net/README.md).
# Evolve by appending fields and union members only; never renumber or retype
# without bumping kWireVersion (net/codec.h), which makes peers of other versions
# refuse each other. Version 2: sparse pulls and pushes carry several tables.
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

# --- membership and clock (scheduler) ---

# A node announces itself. Reply: RegisterReply.
struct Register {
  role @0 :UInt8;          # 0 parameter server, 1 worker
  rank @1 :Int32;          # requested rank, -1 for any free one
  endpoint @2 :Text;       # where a server serves RPCs; empty for workers
  jobId @3 :UInt64;        # the job this process already belongs to (it re-registers
                           # with a restarted scheduler and keeps its state); 0 for a
                           # new process (a replacement: a server loads its shards)
  finishedSteps @4 :Int64; # workers re-registering: the steps their clock counted
  globalStep @5 :Int64 = -1;  # re-registering: the last global step seen, -1 for none
  partitions @6 :List(PartitionState);  # workers re-registering: every partition they
                           # hold (offset reached) or finished in this job
}

# A data partition's progress as a worker knows it.
struct PartitionState {
  id @0 :Int32;            # partition id
  offset @1 :Int64;        # records consumed
  done @2 :Bool;           # fully consumed
}

# Reply to Register and to ClusterQuery: the rank and, once every node has
# registered (phase >= training), the cluster layout.
struct RegisterReply {
  rank @0 :Int32;              # the rank granted (ClusterQuery: echo of the asker's)
  phase @1 :UInt8;             # scheduler::Phase
  serverEndpoints @2 :List(Text);  # by server rank; empty while registering
  numVirtualShards @3 :UInt32; # virtual shards of the key space
  shardOwners @4 :Data;        # u16 server rank per virtual shard
  numWorkers @5 :UInt32;       # workers in the job
  numServers @6 :UInt32;       # parameter servers in the job
  numPartitions @7 :UInt32;    # data partitions of the training split
  staleness @8 :Int64;         # bounded staleness (0 synchronous, < 0 unbounded)
  restoreDir @9 :Text;         # obsolete (servers ignore it): messages name no paths
  reason @10 :Text;            # phase failed or stopping: why, one line; else empty
  jobId @11 :UInt64;           # the job's random id; checkpoint files are bound to it
  restoreStep @12 :Int64 = -1; # a resumed job's checkpoint step: servers load their
                               # shards from <their run_dir>/checkpoint/step-N before
                               # serving; -1 for a fresh job
  finishedSteps @13 :Int64;    # workers: the rank's clock to continue counting from (a
                               # replaced worker continues its predecessor's count;
                               # after a rollback, 0)
  epoch @14 :UInt64;           # membership epoch: changes when a server is replaced or
                               # the job rolls back; workers then re-read this view
  rollbackEpoch @15 :UInt64;   # the latest epoch that began with a rollback of the whole
                               # job to checkpoint step restoreStep (0: none): workers drop
                               # their partitions' progress and ask for partitions again
}

# Who is in the job now. Reply: RegisterReply.
struct ClusterQuery {
  role @0 :UInt8;          # the asker's role
  rank @1 :Int32;          # the asker's rank
}

# Liveness. Reply: ClockReply.
struct Heartbeat {
  role @0 :UInt8;          # 0 server, 1 worker
  rank @1 :Int32;          # the sender's rank
}

# A worker reports finished steps and asks whether it may start step `nextStep`.
# Reply: ClockReply.
struct Clock {
  rank @0 :Int32;          # worker rank
  finishedSteps @1 :Int64; # batches this worker has finished
  nextStep @2 :Int64;      # the step it wants to start
  finished @3 :Bool;       # the worker has no data left
  partition @4 :Int32 = -1;  # the partition being read (-1: none): progress reported
  offset @5 :Int64;        # with the clock, exact at every step of a synchronous job
  loss @6 :Float32 = nan;  # mean training loss of the steps finished since this
                           # worker's previous Clock (NaN: none); for `ctl status`
  examples @7 :Int64;      # training examples this worker process has finished in
                           # total (restarts at 0 with a new process)
}

struct ClockReply {
  mayStart @0 :Bool;       # bounded staleness allows nextStep now
  globalStep @1 :Int64;    # updates applied job-wide
  lrScale @2 :Float32;     # the schedule (warmup + cosine) at globalStep, in [0, 1];
                           # each optimizer's rate = its base rate * lrScale
  phase @3 :UInt8;         # scheduler::Phase
  reason @4 :Text;         # phase failed or stopping: why, one line; else empty
  epoch @5 :UInt64;        # RegisterReply.epoch: a worker seeing a new one re-queries
                           # the cluster (new server endpoints, a rollback)
}

# A worker asks for its next data partition and reports progress on one.
# Reply: PartitionReply.
struct Partition {
  rank @0 :Int32;          # worker rank
  partition @1 :Int32;     # partition reported on, -1 for none
  offset @2 :Int64;        # records consumed in it
  done @3 :Bool;           # it is exhausted
}

struct PartitionReply {
  partition @0 :Int32;     # next partition to read, -1 when none is left
  offset @1 :Int64;        # where to resume in it
  wait @2 :Bool;           # partition -1 while other workers hold unfinished ones:
                           # stay in the job and ask again (a dead worker's
                           # partitions are handed out); false: no data is left
}

# --- parameters (parameter servers) ---

# One table's part of a sparse pull or push.
struct TableKeys {
  table @0 :UInt32;        # table id in the model's feature config
  keys @1 :Data;           # n u64 keys, little-endian (unique in a push)
  grads @2 :Data;          # push: n * dim f32; pull: empty
  learningRate @3 :Float32;  # push: the rate for this table's update; pull: 0
}

# Rows of sparse tables, one part per table (a table at most once): a worker sends
# one request per server per step, whatever the number of tables.
# Reply: PullSparseReply.
struct PullSparse {
  tables @0 :List(TableKeys);
  create @1 :Bool;         # create missing rows (training) or read zeros (export,
                           # evaluation: the export dataflow pulls every entity's keys)
  step @2 :Int64;          # global step, for admission and TTL bookkeeping
}

# One table's rows in a PullSparseReply.
struct TableRows {
  dim @0 :UInt32;          # row width
  rows @1 :Data;           # n * dim f32, in key order
}

struct PullSparseReply {
  tables @0 :List(TableRows);  # parallel to the request's tables
}

# One step's updates for this server: gradients for unique keys of sparse tables,
# one part per table (a table at most once), and optionally the gradient of this
# server's dense block, so a step costs one push per server. Applied whole or not at
# all. Reply: PushReply.
struct PushSparse {
  tables @0 :List(TableKeys);
  step @1 :Int64;          # global step
  clientId @2 :UInt64;     # with seq: a retried push is applied once
  seq @3 :UInt64;          # per-client sequence number, increasing
  dense @4 :PushDense;     # unset: no dense update (assign is not allowed here)
}

struct PushReply {
  duplicate @0 :Bool;      # this (clientId, seq) had been applied already
  dense @1 :PullDenseReply;  # PushDense with `pull`: the block after this update
}

# This server's block of the dense parameters. Reply: PullDenseReply.
struct PullDense {
  unused @0 :Bool;         # reserved
}

struct PullDenseReply {
  offset @0 :UInt64;       # first parameter index of this server's block
  values @1 :Data;         # block f32 values
  version @2 :Int64;       # dense updates applied to the block; -1 until a worker
                           # assigned the initial values
}

# A dense block's values: in PushSparse.dense, this server's share of a step's dense
# gradient; standalone (with assign), the block's initial values (Reply: PushReply).
struct PushDense {
  grads @0 :Data;          # block f32: the gradient, or the initial values
  learningRate @1 :Float32;  # gradient: the rate for this update
  pull @2 :Bool;           # gradient: also return the block after the update
                           # (PushReply.dense): a push and the next pull in one round trip
  assign @3 :Bool;         # standalone: set the block to `grads` (only while its version
                           # is 0, i.e. before any update; later ones are duplicates)
}

# Write (or load) this server's shards in the checkpoint of `step`, under the
# server's own checkpoint root (<run_dir>/checkpoint/step-N). Reply: CheckpointReply.
struct Checkpoint {
  dir @0 :Text;            # obsolete: must be empty (a path on the wire is refused)
  step @1 :Int64;          # global step being saved (or restored), >= 0
  restore @2 :Bool;        # load instead of save
  jobId @3 :UInt64;        # the job the scheduler runs; a server of another job refuses
  incremental @4 :Bool;    # save: only the rows changed since this server's checkpoint
                           # at baseStep (refused with FailedPrecondition when that is
                           # not its last one: the scheduler then asks for a full one)
  baseStep @5 :Int64 = -1; # incremental: the previous checkpoint of the chain
}

struct CheckpointReply {
  files @0 :List(Text);    # files written, plain names in the step's directory
  bytes @1 :UInt64;        # bytes written in all
  fileBytes @2 :List(UInt64);  # size of each file, parallel to files
  checksums @3 :List(UInt32);  # CRC-32C of each file, parallel to files
}

# --- operator control (towerps ctl -> scheduler) ---

struct Control {
  command @0 :Text;        # status | pause | resume | checkpoint | stop
}

struct ControlReply {
  statusJson @0 :Text;     # the job's status as one JSON object
}

struct Envelope {
  version @0 :UInt32;  # wire format version (kWireVersion in net/codec.h)
  sender @1 :Text;     # "<role>/<rank>" of the sender, for logs
  requestId @2 :UInt64; # chosen by the requester; echoed in the reply
  body :union {
    error @3 :Error;   # reply to a request that failed
    ping @4 :Ping;     # request: are you alive
    pong @5 :Pong;     # reply to ping
    register @6 :Register;
    registerReply @7 :RegisterReply;
    clusterQuery @8 :ClusterQuery;
    heartbeat @9 :Heartbeat;
    clock @10 :Clock;
    clockReply @11 :ClockReply;
    partition @12 :Partition;
    partitionReply @13 :PartitionReply;
    pullSparse @14 :PullSparse;
    pullSparseReply @15 :PullSparseReply;
    pushSparse @16 :PushSparse;
    pushReply @17 :PushReply;
    pullDense @18 :PullDense;
    pullDenseReply @19 :PullDenseReply;
    pushDense @20 :PushDense;
    checkpoint @21 :Checkpoint;
    checkpointReply @22 :CheckpointReply;
    control @23 :Control;
    controlReply @24 :ControlReply;
    topK @25 :TopK;
    topKReply @26 :TopKReply;
  }
}

# --- retrieval (towerps query / router -> towerps serve) ---

# The K best items for a user or a raw query vector. Reply: TopKReply.
struct TopK {
  userId @0 :Text;         # raw user id of an exported user; empty: use `vector`
  vector @1 :Data;         # query embedding, f32 x dim (ignored when userId is set)
  k @2 :UInt32;            # results wanted, 1 .. the server's max_k
  efSearch @3 :UInt32;     # HNSW beam width for this request; 0 = server default
  exclude @4 :List(UInt64); # item keys never to return (items already seen)
}

struct TopKReply {
  keys @0 :List(UInt64);   # item keys, best first; at most k
  scores @1 :List(Float32); # inner products, parallel to keys
  rawIds @2 :List(Text);   # raw item ids, parallel to keys (empty when unknown)
}
