// Runtime instruction-set dispatch for the CPU kernels.
#pragma once

namespace eurollm::kernels {

enum class isa { scalar, avx2, avx512 };

// Detected once; EUROLLM_CPU_ISA=scalar|avx2|avx512 in the environment caps it (for tests).
isa cpu_isa();

// Extensions used on top of the base level (false when the base level is capped below avx512).
struct isa_features {
    bool avx512_bf16 = false;  // vdpbf16ps
    bool avx512_vnni = false;  // vpdpbusd (with VL: on 256-bit registers too)
    bool avx_vnni = false;     // VEX vpdpbusd (Alder Lake and later)
};
const isa_features &cpu_features();

}  // namespace eurollm::kernels
