// Writes the seed corpora under <fuzz dir>/corpus/<target>/ from real inputs: frames
// built by the wire code, files written by the project's own writers (a tiny generated
// and prepared dataset, saved tables and dense blocks), the example configs and specs,
// and the first lines of MovieTweetings. Usage:
//   fuzz_make_seeds <repo root> [<shared data dir>]
// Deterministic; rerun after a format change and commit the result.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/checksum.h"
#include "common/file_util.h"
#include "fuzz/fuzz_util.h"
#include "glog/logging.h"
#include "index/embeddings.h"
#include "index/item_delta.h"
#include "index/retrieval_service.h"
#include "index/sharded_index.h"
#include "net/codec.h"
#include "ps/dense_block.h"
#include "sparse_emb/embedding_table.h"
#include "sparse_emb/table_config.h"

namespace towerps::fuzz {
namespace {

using net::wire::Envelope;

std::string corpus_root;

void Seed(const std::string& target, const std::string& name, absl::string_view bytes) {
  const std::string dir = absl::StrCat(corpus_root, "/", target);
  CHECK(CreateDirectories(dir).ok());
  CHECK(WriteFileAtomically(absl::StrCat(dir, "/", name), bytes).ok());
}

std::string Read(const std::string& path) {
  auto bytes = ReadFileToString(path);
  CHECK(bytes.ok()) << bytes.status();
  return *bytes;
}

// The first n lines of text.
std::string Head(absl::string_view text, size_t n) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (lines.size() > n) lines.resize(n);
  return absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

template <typename Fill>
std::string Frame(Fill fill) {
  capnp::MallocMessageBuilder message;
  auto envelope = message.initRoot<Envelope>();
  net::InitEnvelope(envelope, "worker/0", 7);
  fill(envelope.getBody());
  return net::EncodeMessage(message);
}

capnp::Data::Reader Blob(const void* data, size_t bytes) {
  return capnp::Data::Reader(static_cast<const kj::byte*>(data), bytes);
}

void WireSeeds() {
  const std::vector<uint64_t> keys = {1, 2, 99, uint64_t{1} << 40};
  const std::vector<float> grads4(keys.size() * 4, 0.5f), grads8(keys.size() * 8, -0.25f);
  const std::vector<float> dense(5, 0.1f);
  auto pull = Frame([&](Envelope::Body::Builder b) {
    auto p = b.initPullSparse();
    p.setCreate(true);
    p.setStep(3);
    auto tables = p.initTables(2);
    tables[0].setTable(0);
    tables[0].setKeys(Blob(keys.data(), keys.size() * 8));
    tables[1].setTable(1);
    tables[1].setKeys(Blob(keys.data(), 2 * 8));
  });
  auto push = Frame([&](Envelope::Body::Builder b) {
    auto p = b.initPushSparse();
    p.setStep(3);
    p.setClientId(11);
    p.setSeq(1);
    auto tables = p.initTables(2);
    tables[0].setTable(0);
    tables[0].setKeys(Blob(keys.data(), keys.size() * 8));
    tables[0].setGrads(Blob(grads4.data(), grads4.size() * 4));
    tables[0].setLearningRate(0.1f);
    tables[1].setTable(1);
    tables[1].setKeys(Blob(keys.data(), keys.size() * 8));
    tables[1].setGrads(Blob(grads8.data(), grads8.size() * 4));
    tables[1].setLearningRate(0.01f);
    auto d = p.initDense();
    d.setGrads(Blob(dense.data(), dense.size() * 4));
    d.setLearningRate(0.001f);
    d.setPull(true);
  });
  auto assign = Frame([&](Envelope::Body::Builder b) {
    auto d = b.initPushDense();
    d.setAssign(true);
    d.setGrads(Blob(dense.data(), dense.size() * 4));
  });
  auto pull_dense = Frame([](Envelope::Body::Builder b) { b.initPullDense(); });
  auto ping = Frame([](Envelope::Body::Builder b) { b.initPing().setNonce(42); });
  Seed("ps_server", "train_step", JoinParts({assign, pull, push, push, pull_dense, ping}));
  Seed("ps_server", "pull", pull);
  Seed("ps_server", "push", push);

  auto reg = [](int role, int rank, const char* endpoint) {
    return Frame([&](Envelope::Body::Builder b) {
      auto r = b.initRegister();
      r.setRole(static_cast<uint8_t>(role));
      r.setRank(rank);
      r.setEndpoint(endpoint);
    });
  };
  auto clock = Frame([](Envelope::Body::Builder b) {
    auto c = b.initClock();
    c.setRank(0);
    c.setFinishedSteps(2);
    c.setNextStep(3);
  });
  auto partition = Frame([](Envelope::Body::Builder b) {
    auto p = b.initPartition();
    p.setRank(1);
    p.setPartition(-1);
  });
  auto done = Frame([](Envelope::Body::Builder b) {
    auto p = b.initPartition();
    p.setRank(0);
    p.setPartition(0);
    p.setOffset(100);
    p.setDone(true);
  });
  auto heartbeat = Frame([](Envelope::Body::Builder b) {
    auto h = b.initHeartbeat();
    h.setRole(0);
    h.setRank(1);
  });
  auto query = Frame([](Envelope::Body::Builder b) { b.initClusterQuery().setRank(0); });
  auto control = [](const char* command) {
    return Frame([&](Envelope::Body::Builder b) { b.initControl().setCommand(command); });
  };
  const std::string cluster = JoinParts({reg(0, 0, "tcp://127.0.0.1:5000"),
                                         reg(0, -1, "tcp://127.0.0.1:5001"), reg(1, -1, ""),
                                         reg(1, 1, "")});
  Seed("scheduler", "job", JoinParts({cluster, clock, partition, done, heartbeat, query}));
  Seed("scheduler", "control",
       JoinParts({cluster, control("pause"), control("resume"), control("status"),
                  control("checkpoint"), control("stop")}));

  index::TopKQuery by_user;
  by_user.user_id = "u3";
  by_user.k = 5;
  by_user.exclude = {1000, 1001};
  index::TopKQuery by_vector;
  by_vector.vector = {0.5f, -1.0f, 2.0f, 0.0f};
  by_vector.k = 10;
  by_vector.ef_search = 32;
  Seed("retrieval", "queries",
       JoinParts({index::EncodeTopKRequest("query", 1, by_user),
                  index::EncodeTopKRequest("query", 2, by_vector), ping}));

  auto error = net::EncodeError("ps/0", 7, absl::InvalidArgumentError("no table 9"));
  auto reply = Frame([](Envelope::Body::Builder b) {
    auto r = b.initRegisterReply();
    r.setRank(1);
    auto endpoints = r.initServerEndpoints(2);
    endpoints.set(0, "tcp://127.0.0.1:5000");
    endpoints.set(1, "tcp://127.0.0.1:5001");
    const uint16_t owners[4] = {0, 1, 0, 1};
    r.setShardOwners(Blob(owners, sizeof(owners)));
  });
  int i = 0;
  for (const std::string& frame : {pull, push, assign, ping, clock, control("status"), error,
                                   reply, index::EncodeTopKRequest("q", 3, by_user)}) {
    Seed("envelope", absl::StrCat("frame_", i++), frame);
  }
}

void CheckpointSeeds() {
  const std::string dir = ScratchDir::Get().File("ckpt");
  CHECK(CreateDirectories(dir).ok());
  // The same files checkpoint_fuzzer.cc writes.
  const std::string table = "a table snapshot's bytes", dense(40, '\x7f');
  Seed("checkpoint", "manifest",
       absl::StrCat("towerps-checkpoint 2\njob 00000000c0ffee01\nstep 120\nservers 1\nvirtual_shards 16\n"
                    "dense_params 10\n",
                    absl::StrFormat("file ps-0-table-0.snap %d %08x\n", table.size(),
                                    Crc32c(table)),
                    absl::StrFormat("file ps-0-dense.bin %d %08x\n", dense.size(),
                                    Crc32c(dense)),
                    "partition 0 500 1\npartition 1 20 0\n"));
  // An incremental link (format 3): its base, step-100, is looked for beside it.
  Seed("checkpoint", "manifest_incremental",
       absl::StrCat("towerps-checkpoint 3\njob 00000000c0ffee01\nstep 120\nbase 100\nservers 1\n"
                    "virtual_shards 16\ndense_params 10\n",
                    absl::StrFormat("file ps-0-table-0.snap %d %08x\n", table.size(),
                                    Crc32c(table)),
                    absl::StrFormat("file ps-0-dense.bin %d %08x\n", dense.size(),
                                    Crc32c(dense))));

  // The configs snapshot_fuzzer.cc picks by byte 0.
  const char* const configs[] = {
      "name=a dim=4 optimizer=rowwise_adagrad stripes=2",
      "name=b dim=8 dtype=fp16 optimizer=adam admit=2 sketch_width=1024 sketch_depth=1 max_rows=16 stripes=1"};
  for (int c = 0; c < 2; ++c) {
    auto config = sparse_emb::ParseTableConfig(configs[c]);
    CHECK(config.ok()) << config.status();
    auto t = sparse_emb::EmbeddingTable::Create(*config, nullptr);
    CHECK(t.ok());
    const std::vector<uint64_t> keys = {5, 6, 7, 5, 6, 7, 8};
    std::vector<float> rows(keys.size() * config->dim), grads(3 * config->dim, 0.5f);
    (*t)->Pull(keys, 1, rows.data());
    (*t)->Pull(keys, 2, rows.data());
    (*t)->Push(absl::MakeConstSpan(keys).subspan(0, 3), grads.data(), 0.1f, 2);
    const std::string full = dir + "/full", incremental = dir + "/incremental";
    CHECK((*t)->Save(full).ok());
    (*t)->Push(absl::MakeConstSpan(keys).subspan(0, 1), grads.data(), 0.1f, 3);
    CHECK((*t)->SaveIncremental(incremental).ok());
    const std::string tag(1, static_cast<char>(c));
    Seed("snapshot", absl::StrCat("full_", c), tag + Read(full));
    Seed("snapshot", absl::StrCat("incremental_", c), tag + Read(incremental));
  }

  auto block = ps::DenseBlock::Create(5, 10, models::DenseOptimizerOptions());
  CHECK(block.ok());
  std::vector<float> values(10, 0.25f);
  CHECK((*block)->Assign(values).ok());
  CHECK((*block)->Apply(values, 0.01f).ok());
  CHECK((*block)->Save(dir + "/dense").ok());
  Seed("dense_block", "adam", Read(dir + "/dense"));
}

void IndexSeeds() {
  const ScratchDir& scratch = ScratchDir::Get();
  const std::vector<uint64_t> keys = {11, 12, 13, 14, 15, 16};
  const std::vector<std::string> raw_ids = {"i1", "i2", "i3", "i4", "i5", "i6"};
  std::vector<float> values;
  for (size_t i = 0; i < keys.size() * 2; ++i) values.push_back(static_cast<float>(i % 5) - 2);
  index::IndexBuildOptions build;
  build.shards = 2;
  build.ann.hnsw_m = 4;
  build.ann.ef_construction = 8;
  auto manifest =
      index::BuildShardedIndex(build, keys, values.data(), 2, 9, scratch.File("index"));
  CHECK(manifest.ok()) << manifest.status();
  // index_files_fuzzer.cc: byte 0 % 4 = 0 MANIFEST, 1 embeddings file, 2 hnswlib
  // shard, 3 exact shard.
  Seed("index_files", "manifest", std::string(1, '\0') + Read(scratch.File("index/MANIFEST")));
  for (index::AnnEngine engine : {index::AnnEngine::kHnswlib, index::AnnEngine::kExact}) {
    build.ann.engine = engine;
    const std::string dir = scratch.File(std::string(index::AnnEngineName(engine)));
    auto shards = index::BuildShardedIndex(build, keys, values.data(), 2, 9, dir);
    CHECK(shards.ok()) << shards.status();
    const char mode = engine == index::AnnEngine::kHnswlib ? '\2' : '\3';
    Seed("index_files", std::string(index::AnnEngineName(engine)) + "_shard",
         std::string(1, mode) + Read(dir + "/" + shards->shards[0].file));
  }
  auto writer = index::EmbeddingWriter::Open(scratch.File("items.emb"), "", data::Side::kItem, 2,
                                             static_cast<int64_t>(keys.size()), 9);
  CHECK(writer.ok()) << writer.status();
  CHECK((*writer)->Append(keys, raw_ids, values).ok());
  CHECK((*writer)->Finish().ok());
  Seed("index_files", "embeddings", std::string(1, '\1') + Read(scratch.File("items.emb")));
  // item_delta_fuzzer.cc: byte 0 bit 0 = fix the CRC up; a delta of dim 2 over v-1.
  index::ItemDelta delta;
  delta.dim = 2;
  delta.seq = 1;
  delta.created_at_ms = 1700000000000;
  delta.base_version = "v-1";
  delta.upsert_keys = {7, 3};
  delta.upsert_raw_ids = {"new", "changed"};
  delta.upsert_vectors = {0.6f, 0.8f, -1, 0};
  delta.removed_keys = {1};
  auto bytes = index::SerializeItemDelta(delta);
  CHECK(bytes.ok()) << bytes.status();
  Seed("item_delta", "delta", std::string(1, '\0') + *bytes);
  Seed("item_delta", "delta_fix_crc", std::string(1, '\1') + *bytes);
  delta.upsert_keys.clear();
  delta.upsert_raw_ids.clear();
  delta.upsert_vectors.clear();
  Seed("item_delta", "removals_only", std::string(1, '\1') + *index::SerializeItemDelta(delta));
}

void DataSeeds(const std::string& repo, const std::string& shared) {
  const std::string ds = PrepareTinyDataset();
  const std::string meta = Read(ds + "/meta.txt"), train = Read(ds + "/train-00000-of-00001.tpr"),
                    users = Read(ds + "/users.tpr"), items = Read(ds + "/items.tpr");
  Seed("example_reader", "dataset", JoinParts({meta, train, users, items, "0:0:0:0:2"}));
  Seed("record_io", "examples", train);
  Seed("record_io", "users", users);
  Seed("record_io", "items", items);

  const std::string log = ScratchDir::Get().File("log");
  Seed("csv", "generated",
       JoinParts({Read(log + "/towerps.spec"), Head(Read(log + "/interactions.csv"), 12),
                  Read(log + "/item_vectors.csv")}));
  for (const auto& entry : std::filesystem::directory_iterator(repo + "/examples/column_specs")) {
    Seed("column_spec", entry.path().filename().string(), Read(entry.path().string()));
  }
  Seed("column_spec", "generated.spec", Read(log + "/towerps.spec"));
  for (const char* conf : {"generated.conf", "movietweetings.conf"}) {
    Seed("model_config", conf, Read(absl::StrCat(repo, "/examples/", conf)));
  }

  // movielens_fuzzer.cc's formats by byte 0: ml-100k, ml-1m, ml-10m, movietweetings, ml-csv.
  Seed("movielens", "ml-100k",
       std::string(1, '\0') +
           JoinParts({"1\t10\t5\t881250949\n2\t10\t3\t891717742\n1\t20\t4\t878887116\n",
                      "1|24|M|technician|85711\n2|53|F|other|94043\n",
                      "10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|"
                      "0|0|0\n20|Heat (1995)|01-Jan-1995||http://y|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|"
                      "0|1|0|0\n"}));
  Seed("movielens", "ml-1m",
       std::string(1, '\1') + JoinParts({"1::1193::5::978300760\n2::1193::4::978298413\n",
                                         "1::F::1::10::48067\n2::M::56::16::70072\n",
                                         "1193::One Flew Over (1975)::Drama\n"}));
  Seed("movielens", "ml-csv",
       std::string(1, '\4') +
           JoinParts({"userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n2,2,4,1112484676\n",
                      "movieId,title,genres\n2,\"Jumanji, The (1995)\",Adventure|Children\n"}));
  const std::string mt = shared + "/movietweetings-100k";
  if (std::filesystem::exists(mt + "/ratings.dat")) {
    const std::string ratings = Head(Read(mt + "/ratings.dat"), 30);
    std::string movies;
    for (absl::string_view line : absl::StrSplit(Read(mt + "/movies.dat"), '\n')) {
      std::vector<absl::string_view> f = absl::StrSplit(line, "::");
      if (f.size() == 3 && ratings.find(absl::StrCat("::", f[0], "::")) != std::string::npos) {
        absl::StrAppend(&movies, line, "\n");
      }
    }
    Seed("movielens", "movietweetings",
         std::string(1, '\3') + JoinParts({ratings, Head(Read(mt + "/users.dat"), 10), movies}));
  } else {
    LOG(WARNING) << mt << " is absent: no MovieTweetings seed";
  }
}

}  // namespace
}  // namespace towerps::fuzz

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <repo root> [<shared data dir>]\n", argv[0]);
    return 2;
  }
  const std::string repo = argv[1];
  const std::string shared = argc > 2 ? argv[2] : repo + "/../shared/data";
  towerps::fuzz::corpus_root = repo + "/fuzz/corpus";
  towerps::fuzz::WireSeeds();
  towerps::fuzz::CheckpointSeeds();
  towerps::fuzz::IndexSeeds();
  towerps::fuzz::DataSeeds(repo, shared);
  std::printf("seeds written under %s\n", towerps::fuzz::corpus_root.c_str());
  return 0;
}
