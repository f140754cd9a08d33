// The learned-cache flags shared by `glide train`, `glide serve` and `glide bench cache`: what
// each cache looks like (hot set, form, confidence, sketch) and the agreement its hits keep.
#pragma once
#include <cxxopts.hpp>
#include <string>

#include "cache/learned_cache.h"

namespace glide::cli {

// --cache-hot, --cache-form, --cache-confidence, --cache-sketch, --cache-target.
void add_cache_flags(cxxopts::Options& options);
// Reads them into `cache` and returns the target (checked to be in (0, 1)); a bad value fails
// naming the flag.
double apply_cache_flags(const cxxopts::ParseResult& r, cache::CacheOptions& cache);
// An on/off flag's value; anything else fails naming the flag.
bool on_off_flag(const cxxopts::ParseResult& r, const std::string& name);

// The one switch for learned caches, in every command: --cache on|off, with --caches as another
// spelling of it (train used to spell it so). `help` says what "on" does in this command.
void add_cache_switch(cxxopts::Options& options, const std::string& help);
// Its value: off unless --cache or --caches says on; the two spellings must agree when both are
// given.
bool cache_switch(const cxxopts::ParseResult& r);

}  // namespace glide::cli
