#include "cpu/isa.h"

#include <cstdlib>
#include <cstring>

#include "kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace eurollm::kernels {
namespace {

#if defined(__x86_64__)
// CPUID.(7,0).EDX bits 22 (AMX-BF16), 24 (AMX-TILE), 25 (AMX-INT8); Linux hands out the tile
// state only to processes that ask for it (once per process).
void detect_amx(isa_features &f) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 24) & 1u)) return;
#if defined(__linux__)
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) != 0) return;
#endif
    f.amx_bf16 = f.avx512_bf16 && ((d >> 22) & 1u);
    f.amx_int8 = f.avx512_vnni && ((d >> 25) & 1u);
}
#endif

struct detected {
    isa level = isa::scalar;
    isa_features features;
};

detected detect() {
    detected d;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        d.level = isa::avx2;
    if (d.level == isa::avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        d.level = isa::avx512;
    d.features.avx512_bf16 = d.level == isa::avx512 && __builtin_cpu_supports("avx512bf16");
    d.features.avx512_vnni = d.level == isa::avx512 && __builtin_cpu_supports("avx512vnni");
    d.features.avx_vnni = d.level >= isa::avx2 && __builtin_cpu_supports("avxvnni");
    d.features.bf16_split_exact = d.features.avx512_bf16 && !__builtin_cpu_is("intel");
    if (d.level == isa::avx512) detect_amx(d.features);
#endif
    if (const char *cap = std::getenv("EUROLLM_CPU_ISA")) {
        if (std::strcmp(cap, "scalar") == 0) d.level = isa::scalar;
        else if (std::strcmp(cap, "avx2") == 0 && d.level == isa::avx512) d.level = isa::avx2;
        else if (std::strcmp(cap, "avx512f") == 0 && d.level == isa::avx512) d.features = isa_features{};
        else if (std::strcmp(cap, "bf16split") == 0) d.features.bf16_split_exact = d.features.avx512_bf16;
        else if (std::strcmp(cap, "avx512bf16") == 0) d.features.amx_bf16 = d.features.amx_int8 = false;
        if (d.level != isa::avx512) d.features.avx512_bf16 = d.features.avx512_vnni = false;
        if (!d.features.avx512_bf16) d.features.amx_bf16 = false;
        if (!d.features.avx512_vnni) d.features.amx_int8 = false;
        if (!d.features.avx512_bf16) d.features.bf16_split_exact = false;
        if (d.level == isa::scalar) d.features.avx_vnni = false;
    }
    return d;
}

const detected &state() {
    static const detected value = detect();
    return value;
}

}  // namespace

isa cpu_isa() { return state().level; }
const isa_features &cpu_features() { return state().features; }

const char *cpu_isa_name() {
    const detected &d = state();
    switch (d.level) {
        case isa::avx512:
            if (d.features.avx512_bf16 && d.features.avx512_vnni) return "avx512+bf16+vnni";
            if (d.features.avx512_bf16) return "avx512+bf16";
            if (d.features.avx512_vnni) return "avx512+vnni";
            return "avx512";
        case isa::avx2: return d.features.avx_vnni ? "avx2+vnni" : "avx2";
        default: return "scalar";
    }
}

}  // namespace eurollm::kernels
