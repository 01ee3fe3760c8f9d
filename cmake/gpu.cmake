# GPU backends from one source: kernels/gpu/*.cu are compiled as LANGUAGE CUDA (-DEUROLLM_CUDA=ON)
# or as LANGUAGE HIP (-DEUROLLM_HIP=ON) into eurollm_core. Included by the top-level CMakeLists.txt
# after eurollm_core is defined. One flavour per build directory (build-cuda, build-hip).
#
#   -DEUROLLM_CUDA=ON   CUDA for EUROLLM_CUDA_ARCHITECTURES (default 80;90 = A100, H100), cuBLAS,
#                       the CUDA runtime linked statically (libeurollm.so then needs only libcublas
#                       at load time; libcuda, the driver, is opened at the first device call).
#                       Toolkit: a system one (nvcc on PATH or /usr/local/cuda) or the PyPI wheels
#                       that scripts/setup-gpu-toolchains.sh installs (pass CUDAToolkit_ROOT and
#                       CMAKE_CUDA_COMPILER, which the script prints).
#   -DEUROLLM_HIP=ON    HIP for EUROLLM_HIP_ARCHITECTURES (default gfx90a;gfx1030 = MI200, RX 6800),
#                       hipBLAS when found, else our own GEMM kernel (EUROLLM_GPU_OWN_GEMM). Works with
#                       /opt/rocm and with Debian's packages (hipcc, libamdhip64-dev: ROCm 5.2 under
#                       /usr), for which it supplies what CMake < 3.28 does not find by itself.
#   -DEUROLLM_GPU_OWN_GEMM=ON   never use cuBLAS/hipBLAS (our GEMM kernel everywhere).
#   -DEUROLLM_GPU_WERROR=ON     (default) warnings are errors in device code and the GPU backend.

if(NOT EUROLLM_CUDA AND NOT EUROLLM_HIP)
  return()
endif()
if(EUROLLM_CUDA AND EUROLLM_HIP)
  message(FATAL_ERROR "EUROLLM_CUDA and EUROLLM_HIP exclude each other: configure one build directory per flavour")
endif()

option(EUROLLM_GPU_WERROR "Treat warnings as errors in GPU code" ON)
option(EUROLLM_GPU_OWN_GEMM "Use our own GEMM kernel instead of cuBLAS / hipBLAS" OFF)
set(EUROLLM_CUDA_ARCHITECTURES "80;90" CACHE STRING "CUDA architectures of the CUDA build")
set(EUROLLM_HIP_ARCHITECTURES "gfx90a;gfx1030" CACHE STRING "AMD GPU targets of the HIP build")

file(GLOB EUROLLM_GPU_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/kernels/gpu/*.cu)
set(EUROLLM_GPU_BACKEND_SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/src/backend/backend_gpu.cpp)

if(EUROLLM_CUDA)
  # ---------------------------------------------------------------- CUDA
  set(CMAKE_CUDA_ARCHITECTURES ${EUROLLM_CUDA_ARCHITECTURES})
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)

  target_sources(eurollm_core PRIVATE ${EUROLLM_GPU_SOURCES})
  # eurollm_core exists before this file runs, so the CMAKE_CUDA_* defaults did not reach it.
  set_target_properties(eurollm_core PROPERTIES CUDA_ARCHITECTURES "${EUROLLM_CUDA_ARCHITECTURES}"
                        CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON CUDA_RUNTIME_LIBRARY Static)
  target_compile_definitions(eurollm_core PRIVATE EUROLLM_HAVE_CUDA)
  target_link_libraries(eurollm_core PUBLIC CUDA::cudart_static)
  if(EUROLLM_GPU_OWN_GEMM)
    target_compile_definitions(eurollm_core PRIVATE EUROLLM_GPU_OWN_GEMM)
  else()
    target_link_libraries(eurollm_core PUBLIC CUDA::cublas)
  endif()
  # Device code: nvcc's own warnings (all kinds) and the host compiler's, as errors.
  target_compile_options(eurollm_core PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>
    $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:${EUROLLM_GPU_WERROR}>>:--Werror=all-warnings -Xcompiler=-Werror>)
  set(EUROLLM_GPU_KIND "CUDA ${CMAKE_CUDA_COMPILER_VERSION} for ${CMAKE_CUDA_ARCHITECTURES}")

else()
  # ---------------------------------------------------------------- HIP
  set(CMAKE_HIP_ARCHITECTURES ${EUROLLM_HIP_ARCHITECTURES})
  set(CMAKE_HIP_STANDARD 17)
  set(CMAKE_HIP_STANDARD_REQUIRED ON)

  # Debian/Ubuntu ship ROCm under /usr with multiarch paths (hip-lang's CMake package in
  # /usr/lib/<multiarch>/cmake, the device libraries in /usr/lib/<multiarch>/amdgcn/bitcode) and a
  # plain clang (clang++-15) that hipcc wraps. CMake 3.25 expects <rocm>/lib/cmake/hip-lang and a
  # clang that finds ROCm by itself, so for that layout: a ROCm root in the build directory that
  # links to the real package, the ROCm paths as HIP flags, and Debian's clang as the HIP compiler.
  set(_eurollm_deb_hip "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake/hip-lang")
  set(_eurollm_rocm_shim "${CMAKE_BINARY_DIR}/rocm-root")
  if((NOT CMAKE_HIP_COMPILER_ROCM_ROOT OR CMAKE_HIP_COMPILER_ROCM_ROOT STREQUAL _eurollm_rocm_shim)
     AND NOT EXISTS /opt/rocm/lib/cmake/hip-lang AND EXISTS "${_eurollm_deb_hip}/hip-lang-config.cmake")
    file(MAKE_DIRECTORY "${_eurollm_rocm_shim}/lib/cmake")
    if(NOT EXISTS "${_eurollm_rocm_shim}/lib/cmake/hip-lang")
      file(CREATE_LINK "${_eurollm_deb_hip}" "${_eurollm_rocm_shim}/lib/cmake/hip-lang" SYMBOLIC)
    endif()
    set(CMAKE_HIP_COMPILER_ROCM_ROOT "${_eurollm_rocm_shim}" CACHE PATH "ROCm root for CMake's HIP language")
    # hip-lang's dependencies (amd_comgr, AMDDeviceLibs) are found through this prefix, also inside
    # the compiler checks (try_compile runs before the library architecture is known).
    set(ENV{CMAKE_PREFIX_PATH} "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake:$ENV{CMAKE_PREFIX_PATH}")
    set(_eurollm_bitcode "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/amdgcn/bitcode")
    if(NOT CMAKE_HIP_FLAGS MATCHES "--rocm-path")
      set(CMAKE_HIP_FLAGS "${CMAKE_HIP_FLAGS} --rocm-path=/usr --rocm-device-lib-path=${_eurollm_bitcode}"
          CACHE STRING "Flags of the HIP compiler" FORCE)
    endif()
    if(NOT CMAKE_HIP_COMPILER AND NOT DEFINED ENV{HIPCXX})
      # The clang that Debian's hipcc wraps is named in its script (bookworm: clang++-15).
      set(_eurollm_clang_name clang++-15)
      find_program(_eurollm_hipcc_pl hipcc.pl)
      if(_eurollm_hipcc_pl)
        file(STRINGS "${_eurollm_hipcc_pl}" _eurollm_line REGEX "clang\\+\\+-[0-9]+" LIMIT_COUNT 1)
        if(_eurollm_line MATCHES "(clang\\+\\+-[0-9]+)")
          set(_eurollm_clang_name "${CMAKE_MATCH_1}")
        endif()
      endif()
      find_program(_eurollm_hip_clang NAMES ${_eurollm_clang_name} REQUIRED)
      set(CMAKE_HIP_COMPILER "${_eurollm_hip_clang}" CACHE FILEPATH "HIP compiler (the ROCm clang)")
    endif()
    message(STATUS "HIP: Debian ROCm layout under /usr (shim ${_eurollm_rocm_shim})")
  endif()
  enable_language(HIP)

  set_source_files_properties(${EUROLLM_GPU_SOURCES} PROPERTIES LANGUAGE HIP)
  target_sources(eurollm_core PRIVATE ${EUROLLM_GPU_SOURCES})
  set_target_properties(eurollm_core PROPERTIES HIP_ARCHITECTURES "${EUROLLM_HIP_ARCHITECTURES}"
                        HIP_STANDARD 17 HIP_STANDARD_REQUIRED ON)
  target_compile_definitions(eurollm_core PRIVATE EUROLLM_HAVE_HIP)
  if(TARGET hip-lang::amdhip64)
    target_link_libraries(eurollm_core PUBLIC hip-lang::amdhip64)
  else()
    find_library(EUROLLM_AMDHIP64 amdhip64 REQUIRED HINTS /opt/rocm/lib)
    target_link_libraries(eurollm_core PUBLIC ${EUROLLM_AMDHIP64})
  endif()
  set(_eurollm_hipblas OFF)
  if(NOT EUROLLM_GPU_OWN_GEMM)
    find_package(hipblas CONFIG QUIET)
    if(hipblas_FOUND)
      set(_eurollm_hipblas ON)
      target_link_libraries(eurollm_core PUBLIC roc::hipblas)
    endif()
  endif()
  if(NOT _eurollm_hipblas)
    target_compile_definitions(eurollm_core PRIVATE EUROLLM_GPU_OWN_GEMM)
  endif()
  target_compile_options(eurollm_core PRIVATE
    $<$<COMPILE_LANGUAGE:HIP>:-Wall -Wextra>
    $<$<AND:$<COMPILE_LANGUAGE:HIP>,$<BOOL:${EUROLLM_GPU_WERROR}>>:-Werror>)
  set(EUROLLM_GPU_KIND "HIP (${CMAKE_HIP_COMPILER_ID} ${CMAKE_HIP_COMPILER_VERSION}) for ${CMAKE_HIP_ARCHITECTURES}, hipBLAS ${_eurollm_hipblas}")
endif()

# The host side of the GPU backend is plain C++ (kernels/gpu/gpu_kernels.h has no vendor types);
# it is held to the same standard.
if(EUROLLM_GPU_WERROR)
  set_property(SOURCE ${EUROLLM_GPU_BACKEND_SOURCE} APPEND PROPERTY COMPILE_OPTIONS -Werror)
endif()
message(STATUS "GPU backend: ${EUROLLM_GPU_KIND}")
