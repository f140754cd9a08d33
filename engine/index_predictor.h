// Sampled prediction through the output index (engine/output_index.h): each input's candidates
// are the labels of the index's best clusters for it (and the head labels), scored exactly by the
// model's own output rows (fp32, bf16 or int8), so the answer is the exact one whenever the exact
// top-k are among them.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/output_index.h"
#include "engine/predictor.h"

namespace glide::engine {

class IndexPredictor final : public Predictor {
 public:
  // `probes`: clusters searched when a call does not say (0: OutputIndex::kDefaultProbes).
  IndexPredictor(std::shared_ptr<const Network> net, std::shared_ptr<const OutputIndex> index,
                 std::uint32_t probes = 0);
  void predict_from_hidden(const HiddenActivations& acts, std::size_t batch, std::uint32_t k,
                           const SearchParams& params, std::vector<Prediction>& out) const override;
  const OutputIndex& index() const { return *index_; }
  const std::shared_ptr<const OutputIndex>& shared_index() const { return index_; }
  // The clusters a call with `params` searches.
  std::uint32_t probes(const SearchParams& params) const;

 private:
  std::shared_ptr<const OutputIndex> index_;
  std::uint32_t probes_;
};

}  // namespace glide::engine
