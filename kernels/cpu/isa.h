// Runtime instruction-set dispatch for the CPU kernels.
#pragma once

namespace eurollm::kernels {

enum class isa { scalar, avx2, avx512 };

// Detected once; EUROLLM_CPU_ISA=scalar|avx2|avx512 in the environment caps it (for tests).
isa cpu_isa();

}  // namespace eurollm::kernels
