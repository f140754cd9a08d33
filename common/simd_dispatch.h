// One dispatch for every kernel family: a family is a table of function pointers (a struct) per
// SIMD level it has kernels for, and KernelDispatch picks the table of the active level
// (glide::active_isa()), or the best lower level's where that level has none. The scalar table,
// which every family has, ends every chain. Tables are resolved once, when the dispatch is built;
// choosing one is a load of the active level and an index, cheap enough per call, so tests can
// switch levels with set_active_isa() at any time.
//
// A new family: its table struct, one table per level it has kernels for (each built in a file
// compiled for that level), one KernelDispatch listing them, and one traits struct in
// tests/kernel_levels_test.cpp. A new table for an existing family: one line in its dispatch.
#pragma once
#include <array>
#include <initializer_list>
#include <stdexcept>
#include <utility>
#include <vector>

#include "common/cpu.h"

namespace glide {

template <class Table>
class KernelDispatch {
 public:
  // The table of one level, or null where it cannot run although the CPU has the level (AMX
  // tiles that Linux refused this process). Called once, and only for levels the CPU supports:
  // a table built in a file compiled for a higher level must not even be constructed on a CPU
  // without it.
  using Source = const Table* (*)();
  struct Level {
    Isa isa;
    Source table;
  };

  // `levels` must include Isa::kScalar.
  KernelDispatch(std::initializer_list<Level> levels) {
    std::array<Source, kIsaCount> sources{};
    for (const Level& l : levels) sources[index(l.isa)] = l.table;
    const Table* current = nullptr;
    for (Isa isa : kAllIsas) {
      if (sources[index(isa)] && isa_supported(isa))
        if (const Table* t = sources[index(isa)]()) current = t;
      tables_[index(isa)] = current;
    }
    if (!tables_[0]) throw std::logic_error("KernelDispatch: a kernel family has no scalar table");
  }

  // The table used at `isa`: its own, else the best lower level's (the best supported level's
  // where the CPU lacks `isa`).
  const Table& at(Isa isa) const { return *tables_[index(isa)]; }
  // The table of the active level.
  const Table& active() const { return at(active_isa()); }
  const Table& scalar() const { return *tables_[0]; }

  // Every distinct table this CPU can run, each with the lowest level that uses it, lowest first.
  std::vector<std::pair<Isa, const Table*>> runnable() const {
    std::vector<std::pair<Isa, const Table*>> out;
    for (Isa isa : kAllIsas)
      if (isa_supported(isa) && (out.empty() || out.back().second != tables_[index(isa)]))
        out.emplace_back(isa, tables_[index(isa)]);
    return out;
  }

 private:
  static constexpr std::size_t index(Isa isa) { return static_cast<std::size_t>(isa); }
  std::array<const Table*, kIsaCount> tables_{};
};

}  // namespace glide
