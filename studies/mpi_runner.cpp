#include "studies/mpi_runner.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "models/error.h"
#include "nn/parallel.h"

#ifdef FAULTLINE_WITH_MPI
#include <mpi.h>
#endif

namespace faultline::studies {
namespace {

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : 0;
}

#ifdef FAULTLINE_WITH_MPI
bool mpi_active = false;

class MpiRunner final : public studies::TaskRunner {
 public:
  MpiRunner(int* argc, char*** argv) {
    MPI_Init(argc, argv);
    mpi_active = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiRunner() override {
    mpi_active = false;
    MPI_Finalize();
  }
  bool writer() const override { return rank_ == 0; }
  int ranks() const override { return size_; }

  std::vector<studies::TrialOutcome> run(std::size_t count, const std::function<studies::TrialOutcome(std::size_t)>& task) override {
    // This rank's outcomes, serialized one after another, each preceded by its length.
    std::string mine;
    for (std::size_t k = static_cast<std::size_t>(rank_); k < count; k += static_cast<std::size_t>(size_)) {
      const std::string bytes = studies::serialize_trial(task(k));
      const std::uint64_t n = bytes.size();
      mine.append(reinterpret_cast<const char*>(&n), sizeof n);
      mine += bytes;
    }
    if (mine.size() > static_cast<std::size_t>(INT32_MAX)) throw Error("MPI: a rank's results exceed 2 GiB");
    int length = static_cast<int>(mine.size());
    std::vector<int> lengths(static_cast<std::size_t>(size_)), offsets(static_cast<std::size_t>(size_));
    MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD);
    long long total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[r] = static_cast<int>(total);
      total += lengths[r];
    }
    if (total > INT32_MAX) throw Error("MPI: the results of one batch exceed 2 GiB");
    std::string all(static_cast<std::size_t>(total), '\0');
    MPI_Allgatherv(mine.data(), length, MPI_BYTE, all.data(), lengths.data(), offsets.data(), MPI_BYTE, MPI_COMM_WORLD);
    std::vector<studies::TrialOutcome> out(count);
    for (int r = 0; r < size_; ++r) {
      std::size_t at = static_cast<std::size_t>(offsets[r]);
      for (std::size_t k = static_cast<std::size_t>(r); k < count; k += static_cast<std::size_t>(size_)) {
        std::uint64_t n = 0;
        all.copy(reinterpret_cast<char*>(&n), sizeof n, at);
        at += sizeof n;
        out[k] = studies::deserialize_trial(all.substr(at, n));
        at += n;
      }
    }
    return out;
  }

 private:
  int rank_ = 0, size_ = 1;
};
#endif

}  // namespace

bool launched_by_mpi() {
#ifdef FAULTLINE_WITH_MPI
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
#else
  return false;
#endif
}

std::unique_ptr<studies::TaskRunner> make_task_runner(int* argc, char*** argv) {
#ifdef FAULTLINE_WITH_MPI
  if (launched_by_mpi()) return std::make_unique<MpiRunner>(argc, argv);
#else
  (void)argc;
  (void)argv;
  if (std::getenv("OMPI_COMM_WORLD_SIZE") && env_int("OMPI_COMM_WORLD_SIZE") > 1)
    throw Error("started by mpirun, but this faultline was built without MPI (FAULTLINE_WITH_MPI=OFF): every rank would run the whole sweep");
#endif
  return std::make_unique<studies::LocalRunner>();
}

void abort_all_ranks(int status) {
#ifdef FAULTLINE_WITH_MPI
  int size = 1;
  if (mpi_active) MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (mpi_active && size > 1) MPI_Abort(MPI_COMM_WORLD, status);
#else
  (void)status;
#endif
}

int default_threads_per_rank() {
  const int local = env_int("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int cores = nn::default_threads();
  return local > 1 ? std::max(1, cores / local) : cores;
}

}  // namespace faultline::studies
