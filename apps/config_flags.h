// Model and training flags shared by `glide train` and `glide bench train`: defaults, then a
// JSON config file, then the flags actually given (flags win).
#pragma once
#include <cxxopts.hpp>

#include "engine/config.h"

namespace glide::cli {

void add_config_flags(cxxopts::Options& options);
// Applies --config FILE (if given), then every config flag present in `r`.
void apply_config_flags(const cxxopts::ParseResult& r, engine::Config& config);
// Rejects positional leftovers and the like with one clear error.
void reject_unmatched(const cxxopts::ParseResult& r);

}  // namespace glide::cli
