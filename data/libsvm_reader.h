// svmlight / libsvm multi-label text: "l1,l2 f:v f:v ..." per point, no header. Blank lines and
// '#' comments are skipped and 'qid:N' tokens ignored. Dimensions are the largest id + 1 unless
// ReadOptions gives them; ReadOptions::index_base = 1 reads 1-based feature ids.
#pragma once
#include <string>
#include <string_view>

#include "data/dataset.h"
#include "data/read_options.h"
#include "data/zstd_io.h"

namespace glide::data {

Dataset read_libsvm(const std::string& path, const ReadOptions& options = {},
                    ReadReport* report = nullptr);
Dataset parse_libsvm(std::string_view text, const std::string& name,
                     const ReadOptions& options = {}, ReadReport* report = nullptr);
Dataset read_libsvm(TextSource& source, const ReadOptions& options, ReadReport* report);

}  // namespace glide::data
