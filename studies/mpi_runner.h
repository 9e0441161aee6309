// Spreads a sweep's trials over MPI ranks (Debian's OpenMPI; built when FAULTLINE_WITH_MPI is on).
// Rank r evaluates tasks r, r + N, r + 2N, ...; every rank receives every outcome (the Walking
// Noise bisection decides its next points from them), and rank 0 writes the files. Outcomes are
// exchanged bit for bit and combined in trial order, so results equal a single-process run.
#pragma once

#include <memory>

#include "studies/sweep.h"

namespace faultline::studies {

// True when this process was started by mpirun (and MPI support is built in).
bool launched_by_mpi();
// Initialises MPI (when launched_by_mpi()) and returns the runner; otherwise a LocalRunner.
std::unique_ptr<studies::TaskRunner> make_task_runner(int* argc, char*** argv);
// Ends the whole MPI job after an error on one rank (the others would wait forever in a
// collective); no-op without MPI.
void abort_all_ranks(int status);
// Worker threads per process when --threads is not given: the cores divided among the ranks
// that share this machine.
int default_threads_per_rank();

}  // namespace faultline::studies
