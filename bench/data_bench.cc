// bench_data: generator, prepare and example-reader throughput (bench/run.sh data).
//
// Figures (each beside a baseline measured in the same run):
//   generate_rows_per_s      rows of interactions.csv written per second
//   prepare_lines_per_s      log lines turned into a dataset per second, beside a bare
//                            line scan of the same file (LineReader) as the peer
//   prepare_lines_per_cpu_s  the same per CPU second (wall time includes fsync)
//   prepare_peak_rss_mib     peak resident memory of the process after prepare
//   reader_examples_per_s    decoded examples per second (shuffled), beside raw record
//                            reads (checksummed, not decoded) as the peer
// Sizes: 10M interactions (200k users, 100k items); --quick: 1M.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "common/file_util.h"
#include "data/example_reader.h"
#include "data/generator.h"
#include "data/prepare.h"
#include "data/record_io.h"
#include "data/text_io.h"

namespace towerps::bench {
namespace {

void Fail(const absl::Status& s) {
  std::fprintf(stderr, "bench_data: %s\n", std::string(s.message()).c_str());
  std::exit(1);
}

// User + system CPU seconds of the process so far.
double CpuSeconds() {
  struct rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
  auto sec = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
  return sec(usage.ru_utime) + sec(usage.ru_stime);
}

double PeakRssMiB() {
  struct rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

int Main(int argc, char** argv) {
  const bool quick = QuickMode(argc, argv);
  const int64_t interactions = quick ? 1'000'000 : 10'000'000;
  const std::string root = absl::StrCat("/tmp/towerps_data_bench_", ::getpid());
  data::GenerateOptions g;
  g.output_dir = root + "/log";
  g.interactions = interactions;
  g.users = interactions / 50;
  g.items = interactions / 100;
  g.clusters = 50;
  const std::string suite = "data";
  const std::string size = quick ? "1M" : "10M";

  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<data::GenerateResult> gen = data::Generate(g);
  if (!gen.ok()) Fail(gen.status());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  PrintFigure({suite, "generate_rows_per_s_" + size, gen->interactions / seconds, "rows/s", "", 0});
  PrintFigure({suite, "generate_mib_per_s_" + size, gen->bytes / seconds / (1 << 20), "MiB/s", "", 0});

  // Baseline: only splitting the file into lines.
  const std::string log = g.output_dir + "/interactions.csv";
  int64_t lines = 0;
  start = std::chrono::steady_clock::now();
  absl::Status scan = data::ForEachLine(log, [&](absl::string_view line, int64_t) {
    DoNotOptimize(line.size());
    ++lines;
    return absl::OkStatus();
  });
  if (!scan.ok()) Fail(scan);
  const double scan_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  data::PrepareOptions p;
  p.source.input = g.output_dir;
  p.output_dir = root + "/ds";
  p.num_shards = 8;
  start = std::chrono::steady_clock::now();
  const double cpu_start = CpuSeconds();
  absl::StatusOr<data::PrepareResult> prep = data::Prepare(p);
  const double cpu_seconds = CpuSeconds() - cpu_start;
  if (!prep.ok()) Fail(prep.status());
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  PrintFigure({suite, "prepare_lines_per_s_" + size, prep->interaction_lines / seconds, "lines/s",
               "line_scan", lines / scan_seconds});
  // Wall time includes writing and fsyncing the dataset; CPU time shows the compute.
  PrintFigure({suite, "prepare_lines_per_cpu_s_" + size, prep->interaction_lines / cpu_seconds,
               "lines/s", "", 0});
  PrintFigure({suite, "prepare_peak_rss_mib_" + size, PeakRssMiB(), "MiB", "", 0});
  const uint64_t train = prep->examples[0];

  // Reader: decoded, shuffled examples beside raw checksummed records.
  absl::StatusOr<data::DatasetMeta> meta = data::LoadDatasetMeta(p.output_dir);
  if (!meta.ok()) Fail(meta.status());
  uint64_t bytes = 0, records = 0;
  std::string payload;
  start = std::chrono::steady_clock::now();
  for (const data::ShardInfo& shard : meta->shards.at("train")) {
    auto file = data::RecordFileReader::Open(p.output_dir + "/" + shard.file,
                                             data::RecordKind::kExamples);
    if (!file.ok()) Fail(file.status());
    while (true) {
      absl::StatusOr<bool> more = file->Next(&payload);
      if (!more.ok()) Fail(more.status());
      if (!*more) break;
      bytes += payload.size();
      ++records;
    }
  }
  const double raw_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  data::ExampleReaderOptions r;
  r.dataset_dir = p.output_dir;
  r.shuffle = true;
  auto reader = data::ExampleReader::Open(r);
  if (!reader.ok()) Fail(reader.status());
  data::Example example;
  uint64_t read = 0, keys = 0;
  start = std::chrono::steady_clock::now();
  while (true) {
    absl::StatusOr<bool> more = (*reader)->Next(&example);
    if (!more.ok()) Fail(more.status());
    if (!*more) break;
    ++read;
    keys += example.user.values.size() + example.item.values.size();
  }
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (read != train || records != train) Fail(absl::InternalError("reader count mismatch"));
  DoNotOptimize(keys);
  PrintFigure({suite, "reader_examples_per_s_" + size, read / seconds, "examples/s", "raw_records",
               records / raw_seconds});
  PrintFigure({suite, "example_bytes_" + size, static_cast<double>(bytes) / records, "bytes", "", 0});
  (void)RemoveAll(root);
  return 0;
}

}  // namespace
}  // namespace towerps::bench

int main(int argc, char** argv) { return towerps::bench::Main(argc, argv); }
