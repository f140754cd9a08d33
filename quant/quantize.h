// Quantization of weights and activations for int8 inference.
//
// Weights: symmetric signed 8-bit, q = clamp(round(w / s), -127, 127) with s = max|w| / 127 per
// row (one output neuron) or per tensor; dequantized as q * s, so |w - q s| <= s / 2.
// Activations: non-negative (they follow a ReLU) unsigned 8-bit per sample, a = round(x / t) with
// t = max(x) / 255 and zero point 0 (negative inputs clamp to 0, which a ReLU output never has),
// so no row-offset compensation is needed: sum_i x_i w_i ~= t s sum_i a_i q_i.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace glide::quant {

enum class Granularity { kRow, kTensor };
// "row" or "tensor"; throws glide::Error otherwise.
Granularity parse_granularity(const std::string& s);
const char* granularity_name(Granularity g);

// Quantizes `rows` rows of `cols` floats (row r at W + r * w_stride) to Q (row r at
// Q + r * q_stride, q_stride >= cols; the padding bytes are set to 0) and writes one scale per
// row to scales[0..rows) (with kTensor all scales are equal). An all-zero row gets scale 0.
void quantize_rows_s8(const float* W, std::size_t rows, std::size_t cols, std::size_t w_stride,
                      Granularity g, std::int8_t* Q, std::size_t q_stride, float* scales);

// W[r * w_stride + c] = Q[r * q_stride + c] * scales[r] for c < cols (padding left alone).
void dequantize_rows_s8(const std::int8_t* Q, std::size_t q_stride, const float* scales,
                        std::size_t rows, std::size_t cols, float* W, std::size_t w_stride);

// One activation vector of n values to u8 with zero point 0; returns the scale t (0 when every
// value is <= 0, and then q is all zero).
float quantize_u8(const float* x, std::size_t n, std::uint8_t* q);

}  // namespace glide::quant
