# cmake -DFILE=<java source> -P package_private.cmake
# Makes SWIG's generated constants interface package-private (SWIG has no option for it).
if(EXISTS "${FILE}")
  file(READ "${FILE}" _src)
  string(REPLACE "public interface " "interface " _src "${_src}")
  file(WRITE "${FILE}" "${_src}")
endif()
