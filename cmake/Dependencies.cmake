# Every dependency comes from a Debian 12 package (scripts/deps.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(NGTCP2 REQUIRED IMPORTED_TARGET libngtcp2>=0.12 libngtcp2_crypto_gnutls>=0.12)
pkg_check_modules(GNUTLS REQUIRED IMPORTED_TARGET gnutls>=3.7)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv>=1.44)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json REQUIRED)
find_path(PROTOZERO_INCLUDE_DIR protozero/pbf_reader.hpp REQUIRED)

add_library(pg_deps INTERFACE)
target_include_directories(pg_deps SYSTEM INTERFACE ${PROTOZERO_INCLUDE_DIR})
target_link_libraries(pg_deps INTERFACE
  PkgConfig::NGTCP2 PkgConfig::GNUTLS PkgConfig::SODIUM PkgConfig::LIBUV
  fmt::fmt spdlog::spdlog CLI11::CLI11 nlohmann_json::nlohmann_json)

# Gateway port mapping (src/portmap only): libminiupnpc has a pkg-config file, libnatpmp does not.
pkg_check_modules(MINIUPNPC REQUIRED IMPORTED_TARGET miniupnpc>=2.2)
find_path(NATPMP_INCLUDE_DIR natpmp.h REQUIRED)
find_library(NATPMP_LIBRARY natpmp REQUIRED)
add_library(pg_gateway_deps INTERFACE)
target_include_directories(pg_gateway_deps SYSTEM INTERFACE ${NATPMP_INCLUDE_DIR})
target_link_libraries(pg_gateway_deps INTERFACE PkgConfig::MINIUPNPC ${NATPMP_LIBRARY})
