# Run at build time (cmake -P): writes OUT (a header defining KILN_BUILD_ID) from `git describe`, touching the
# file only when the id changes, so every binary of one build agrees on the id and a commit recompiles one file.
execute_process(COMMAND git describe --always --dirty --abbrev=12 WORKING_DIRECTORY ${SRC}
                OUTPUT_VARIABLE id OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT id)
  set(id "nogit")
endif()
set(content "#define KILN_BUILD_ID \"${VERSION}+${id}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT "${old}" STREQUAL "${content}")
  file(WRITE ${OUT} "${content}")
endif()
