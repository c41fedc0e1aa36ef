# Fails when a core source includes a header of a library it may not use.
#   cmake -DENLACE_CORE_DIR=<core> -P check_layers.cmake
#
# The core's libraries and what each may include besides itself (the order
# of core/CMakeLists.txt and docs/ARCHITECTURE.md). A header belongs to the
# library whose folder holds it: "enlace/x.h" to the one whose include/enlace/
# has x.h, "<library>/x.h" to <library>. The sync engine (base..sync) may
# never include case work; disclosure (table arithmetic) uses base only.

cmake_minimum_required(VERSION 3.25)

set(layers base crypto storage replica trust sync disclosure casework capi)
set(allowed_base "")
set(allowed_crypto base)
set(allowed_storage base)
set(allowed_replica base crypto storage)
set(allowed_trust base crypto storage replica)
set(allowed_sync base crypto storage replica trust)
set(allowed_disclosure base)
set(allowed_casework base crypto storage replica trust sync disclosure)
set(allowed_capi base crypto storage replica trust sync disclosure casework)

# Which library owns each public header.
foreach(layer IN LISTS layers)
  file(GLOB headers RELATIVE ${ENLACE_CORE_DIR}/${layer}/include/enlace
       ${ENLACE_CORE_DIR}/${layer}/include/enlace/*.h)
  foreach(h IN LISTS headers)
    if(DEFINED owner_${h})
      message(FATAL_ERROR "enlace/${h} is public in both ${owner_${h}} and ${layer}")
    endif()
    set(owner_${h} ${layer})
  endforeach()
endforeach()

set(problems "")
foreach(layer IN LISTS layers)
  file(GLOB_RECURSE sources ${ENLACE_CORE_DIR}/${layer}/*.h ${ENLACE_CORE_DIR}/${layer}/*.cc
       ${ENLACE_CORE_DIR}/${layer}/*.c)
  foreach(src IN LISTS sources)
    file(STRINGS ${src} includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"[^\"]+\"")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^[^\"]*\"([^\"]+)\".*$" "\\1" header "${line}")
      set(owner "")
      if(header MATCHES "^enlace/(.+)$")
        set(name ${CMAKE_MATCH_1})
        if(DEFINED owner_${name})
          set(owner ${owner_${name}})
        else()
          list(APPEND problems "${src}: includes ${header}, which no core library has")
        endif()
      elseif(header MATCHES "^([a-z_]+)/")
        set(owner ${CMAKE_MATCH_1})
        if(NOT owner IN_LIST layers)
          list(APPEND problems "${src}: includes ${header}, outside the core")
          set(owner "")
        endif()
      else()
        list(APPEND problems "${src}: includes \"${header}\", name its library: \"<library>/${header}\"")
      endif()
      if(owner AND NOT owner STREQUAL layer AND NOT owner IN_LIST allowed_${layer})
        list(APPEND problems "${src}: ${layer} includes ${header}, of ${owner} (above it)")
      endif()
    endforeach()
  endforeach()
endforeach()

if(problems)
  list(JOIN problems "\n  " text)
  message(FATAL_ERROR "layering: a core library uses one it may not:\n  ${text}")
endif()
