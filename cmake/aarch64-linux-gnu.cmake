# Cross build for 64-bit Arm Linux (Raspberry Pi 4 / Zero 2 W, Raspberry Pi
# OS or Debian arm64) with Debian's cross compiler and the :arm64 multiarch
# -dev packages:
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# The packages are installed by scripts/install-deps.sh; docs/arm64.md says
# how to build, test and install.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(SHIM_CROSS_TRIPLE aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${SHIM_CROSS_TRIPLE}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${SHIM_CROSS_TRIPLE})

# Libraries and headers: the cross libc under /usr/aarch64-linux-gnu and the
# multiarch ones under /usr/lib/aarch64-linux-gnu; never the host's.
# Programs (python3, pkg-config) are the host's.
set(CMAKE_FIND_ROOT_PATH /usr/${SHIM_CROSS_TRIPLE} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu)

# pkg-config sees the arm64 .pc files only (yaml, qrencode, gpiod, cmocka,
# libcrypto); the include and library paths they name are the multiarch
# ones, so no sysroot prefix.
set(ENV{PKG_CONFIG_LIBDIR}
    /usr/lib/${SHIM_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

# ctest runs the unit tests through qemu-aarch64, so they run whether or not
# binfmt_misc knows aarch64. Never with -L or QEMU_LD_PREFIX: the program
# interpreter is then the cross libc's ld.so, which does not match the
# multiarch libc.so.6 and makes every pthread_create hang.
find_program(SHIM_QEMU_AARCH64 qemu-aarch64)
if(SHIM_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SHIM_QEMU_AARCH64})
endif()
