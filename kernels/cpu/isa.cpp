#include "cpu/isa.h"

#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace eurollm::kernels {
namespace {

isa detect() {
    isa best = isa::scalar;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        best = isa::avx2;
    if (best == isa::avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        best = isa::avx512;
#endif
    if (const char *cap = std::getenv("EUROLLM_CPU_ISA")) {
        if (std::strcmp(cap, "scalar") == 0) best = isa::scalar;
        else if (std::strcmp(cap, "avx2") == 0 && best == isa::avx512) best = isa::avx2;
    }
    return best;
}

}  // namespace

isa cpu_isa() {
    static const isa value = detect();
    return value;
}

const char *cpu_isa_name() {
    switch (cpu_isa()) {
        case isa::avx512: return "avx512";
        case isa::avx2: return "avx2";
        default: return "scalar";
    }
}

}  // namespace eurollm::kernels
