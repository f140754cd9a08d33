// A label-sharded model: the output layer cut into contiguous ranges of labels, one per rank of a
// distributed run (dist/), each rank holding the lower layers whole. A shard is an ordinary
// Network whose labels are its range's, numbered from 0 (local ids); this file cuts a network or
// a dataset into shards and joins shards back into one network, and reads and writes the
// manifest of a sharded model file: one model file per shard (an ordinary .glide file of the
// shard's network) plus a manifest at the model's path naming them and their label ranges.
// Nothing here needs MPI: one process loads a sharded model by merging its shards (load_model
// does, engine/checkpoint.h).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/checkpoint.h"
#include "engine/config.h"
#include "engine/network.h"

namespace glide::engine {

// Labels [begin, end) of the whole output layer.
struct LabelRange {
  std::uint32_t begin = 0, end = 0;
  std::uint32_t size() const { return end - begin; }
  bool contains(std::uint32_t l) const { return l >= begin && l < end; }
  friend bool operator==(const LabelRange&, const LabelRange&) = default;
};

// Rank `rank`'s share of `labels` over `ranks` ranks: contiguous, in rank order, the first
// labels % ranks ranks one label more. Throws when a rank would get no label.
LabelRange shard_range(std::uint32_t labels, int ranks, int rank);

// The config of a shard: `full` with range.size() labels.
NetworkConfig shard_config(const NetworkConfig& full, LabelRange range);

// A shard's new wide layer must start as one process's would, from statistics of the whole
// training set: its norm power and share rounds, chosen on the whole set when `auto`, are written
// into `net`, and the whole set's median label norm is returned for
// FitOptions::wide_reference_norm (0 when `net` has no wide layer, or when its share rounds make
// shard_wide_start build the shard's layer). Call with the whole set, before keep_shard_labels.
// `neighbours` receives the choice's nearest labels, for shard_wide_start (as fit reuses them).
double resolve_wide_start(NetworkConfig& net, const data::Dataset& whole_train,
                          LabelNeighbours* neighbours = nullptr);

// The wide layer a shard starts from when its point's inputs are shared among their labels
// (net.wide_share_rounds > 0, resolved): the shares depend on every label of a point, so the
// layer is built from the whole training set and the shard's labels are kept. Empty when the
// shard can build its own (no wide layer, or no shares).
WideLayer shard_wide_start(const NetworkConfig& net, const data::Dataset& whole_train,
                           LabelRange range, const LabelNeighbours* neighbours = nullptr);

// Keeps each point's labels in `range`, as local ids (label - range.begin); num_labels becomes
// range.size(). Features are untouched.
void keep_shard_labels(data::Dataset& d, LabelRange range);

// The shard `range` of `full`: a copy of its lower layers and step, its output rows, biases and
// optimizer state of the range (in the same storage), and the wide layer's entries of the range.
std::unique_ptr<Network> slice_network(const Network& full, LabelRange range,
                                       const TrainConfig& train);

// One network from shards in label order (their lower layers are taken from the first; the
// output rows keep the first shard's storage). `full` is the merged network's config. Throws when
// the shards do not fit together (shapes, label counts) or their rows are int8.
std::unique_ptr<Network> merge_networks(std::span<Network* const> shards, const NetworkConfig& full,
                                        const TrainConfig& train);

// ---- Sharded model files ----

struct ShardEntry {
  std::string file;  // beside the manifest (no directory part)
  LabelRange labels;
};

struct ShardManifest {
  std::uint32_t num_labels = 0;  // of the whole model
  TrainingState state;
  std::vector<ShardEntry> shards;  // in label order, covering [0, num_labels)
};

// "<model>.b<batches>.shard-<rank>-of-<ranks>": shard `rank`'s model file after `batches`
// batches, beside the manifest `model`. Each checkpoint writes new files, so that until its
// manifest replaces the previous one, that one still names complete files of one point of
// training (the previous files are removed after).
std::string shard_file_path(const std::string& model, int rank, int ranks, std::uint64_t batches);

// Whether `path` is a sharded model's manifest (its first bytes; false when it cannot be read).
bool is_shard_manifest(const std::string& path);
// Reads and checks a manifest (ranges contiguous from 0 to num_labels); names the path and fault.
ShardManifest read_shard_manifest(const std::string& path);
// Writes the manifest atomically. Write it after every shard file is complete: a crash then
// leaves the previous manifest (or none), never one naming a missing or partial shard.
void write_shard_manifest(const std::string& path, const ShardManifest& manifest);

// Every shard of a sharded model, merged into one network in this process (the whole model's
// config, the manifest's training state). What load_model does with a manifest.
LoadedModel load_sharded_model(const std::string& manifest, bool optimizer_state = true);

// The model at `path` (a sharded model or one model file) as rank `rank` of `ranks` trains it:
// the shard of shard_range(labels, ranks, rank), with the whole model's config. A sharded model
// of as many shards reads only the rank's own file; any other (one file, another shard count) is
// loaded whole and re-sharded. Its state's label counts are the shard's labels' (none where the
// model kept none); the ranks put them together (ShardedRun::load).
LoadedModel load_model_shard(const std::string& path, int ranks, int rank,
                             bool optimizer_state = true);

}  // namespace glide::engine
