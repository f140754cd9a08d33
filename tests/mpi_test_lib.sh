# Sourced by the MPI tests (registered when glide is built with GLIDE_MPI): what cli_test_lib.sh
# gives, plus `compare` (glide_compare_models), `ranks N CMD...` (CMD under mpirun as N ranks on
# this machine) and a tiny problem: tr.gds / te.gds, and the flags of a deterministic run ($det:
# one thread per rank, the dense softmax, small batches).
# Usage: . "$(dirname "$0")/mpi_test_lib.sh" GLIDE_BINARY COMPARE_BINARY MPIEXEC
compare=$(realpath "$2")
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cli_test_lib.sh" "$1"
mpiexec=$3
# CI runs as root; containers often forbid the shared-memory single-copy path.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
ranks() {
  local n=$1; shift
  "$mpiexec" --oversubscribe -np "$n" "$@"
}
"$glide" data synth --preset tiny --points 300 --test-points 50 -o tr.gds --test-output te.gds \
  2>/dev/null
# Adam's and Adagrad's first steps divide a gradient by its own size: with the default tiny eps a
# gradient near 0 whose sum over shards rounds the other way moves a weight a whole lr. eps 1e-4
# keeps updates proportional to such gradients, so the weights compare the arithmetic (sums over
# shards in another order: float rounding) rather than that amplification.
echo '{"train": {"eps": 1e-4, "output_eps": 1e-4}}' >eps.json
det=(--batch 16 --threads 1 --sampling dense --seed 7 --config eps.json -q)
tol=(2e-5)

# The pid of rank $1 of this test's job: the process whose environment (mpirun passes its own on)
# holds this test's marker and that rank.
export GLIDE_MPI_TEST_JOB="$$-$RANDOM"
rank_pid() {
  local e
  for e in /proc/[0-9]*/environ; do
    if tr '\0' '\n' 2>/dev/null <"$e" | grep -qx "GLIDE_MPI_TEST_JOB=$GLIDE_MPI_TEST_JOB" &&
      tr '\0' '\n' 2>/dev/null <"$e" | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
      e=${e#/proc/}
      echo "${e%/environ}"
      return
    fi
  done
}
