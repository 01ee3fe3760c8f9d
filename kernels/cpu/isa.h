// Runtime instruction-set dispatch for the CPU kernels.
#pragma once

namespace eurollm::kernels {

enum class isa { scalar, avx2, avx512 };

// Detected once; EUROLLM_CPU_ISA=scalar|avx2|avx512f in the environment caps it, and =bf16split
// forces the two-term exact bf16 product where AVX512-BF16 exists, =avx512bf16 masks AMX (for tests).
isa cpu_isa();

// Extensions used on top of the base level (false when the base level is capped below avx512).
struct isa_features {
    bool avx512_bf16 = false;  // vdpbf16ps
    bool avx512_vnni = false;  // vpdpbusd (with VL: on 256-bit registers too)
    bool avx_vnni = false;     // VEX vpdpbusd (Alder Lake and later)
    // AMX tiles (Sapphire Rapids and later), with the tile state granted to this process by the
    // OS. EUROLLM_CPU_ISA=avx512bf16 masks AMX alone, to test the vector kernels on such a CPU.
    bool amx_bf16 = false;  // tdpbf16ps
    bool amx_int8 = false;  // tdpbsud and kin
    // The exact (act_precision::split) bf16 product: two vdpbf16ps per activation where that beats
    // converting the weights to f32 for FMAs. Measured: 2x faster on Zen 4 (one 512-bit FMA and one
    // vdpbf16ps per cycle), 1.1-1.7x slower on a Xeon with AMX (two 512-bit FMA ports).
    bool bf16_split_exact = false;
};
const isa_features &cpu_features();

}  // namespace eurollm::kernels
