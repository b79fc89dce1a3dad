# llhttp as a static library, compiled from the C sources that Debian's
# node-llhttp package installs (nothing of llhttp is kept in this repository).
# LLHTTP_SOURCE_DIR / LLHTTP_INCLUDE_DIR may point elsewhere (e.g. a release
# tarball of llhttp unpacked by hand on another distribution).

set(LLHTTP_SOURCE_DIR "/usr/share/llhttp" CACHE PATH "Directory with llhttp.c, api.c and http.c")
set(LLHTTP_INCLUDE_DIR "/usr/share/include/llhttp" CACHE PATH "Directory with llhttp.h")

foreach(_f llhttp.c api.c http.c)
  if(NOT EXISTS "${LLHTTP_SOURCE_DIR}/${_f}")
    message(FATAL_ERROR "llhttp source ${LLHTTP_SOURCE_DIR}/${_f} not found: "
                        "install Debian's node-llhttp (deps/install.sh) or set LLHTTP_SOURCE_DIR")
  endif()
endforeach()
if(NOT EXISTS "${LLHTTP_INCLUDE_DIR}/llhttp.h")
  message(FATAL_ERROR "llhttp.h not found in ${LLHTTP_INCLUDE_DIR}: set LLHTTP_INCLUDE_DIR")
endif()

# An OBJECT library: its objects go into both libuvws.a and libuvws.so,
# so installed users never need a separate llhttp.
add_library(uvws_llhttp OBJECT
  "${LLHTTP_SOURCE_DIR}/llhttp.c"
  "${LLHTTP_SOURCE_DIR}/api.c"
  "${LLHTTP_SOURCE_DIR}/http.c")
target_include_directories(uvws_llhttp SYSTEM PUBLIC "${LLHTTP_INCLUDE_DIR}")
set_target_properties(uvws_llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON C_VISIBILITY_PRESET hidden)
# Generated code: ~140 warnings under -Wall -Wextra that are not ours to fix.
target_compile_options(uvws_llhttp PRIVATE -w)
