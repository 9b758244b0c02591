# cmake -DSRC=<repo>/src/kotsu -DSTAMP=<file> -P check_layers.cmake
# The layers of src/kotsu, lowest first: a file may include headers of its own layer and of the layers before
# it, never of a layer after it (data flows one way: io/text/vision -> data/models -> infer -> train ->
# tune/serve/export). The build runs this before compiling the library, so a back-edge fails the build,
# naming the file, the line and the two layers. Written by hand: CMake has no include-layering check.
set(LAYERS core io vision text data eval dist models infer train tune export serve)

file(GLOB_RECURSE files "${SRC}/*.hpp" "${SRC}/*.cpp")
set(errors "")
foreach(f IN LISTS files)
  file(RELATIVE_PATH rel "${SRC}" "${f}")
  string(REGEX MATCH "^[^/]+" layer "${rel}")
  list(FIND LAYERS "${layer}" rank)
  if(rank EQUAL -1)
    string(APPEND errors "src/kotsu/${rel}: folder '${layer}' is not a layer (add it to LAYERS in cmake/check_layers.cmake)\n")
    continue()
  endif()
  file(STRINGS "${f}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"kotsu/[^/\"]+/")
  foreach(line IN LISTS includes)
    string(REGEX REPLACE "^[^\"]*\"kotsu/([^/\"]+)/.*$" "\\1" used "${line}")
    list(FIND LAYERS "${used}" used_rank)
    if(used_rank GREATER rank)
      string(STRIP "${line}" line)
      string(APPEND errors "src/kotsu/${rel}: '${line}': layer ${layer} must not include layer ${used}, which comes after it (${LAYERS})\n")
    endif()
  endforeach()
endforeach()
if(errors)
  message(FATAL_ERROR "include layering broken:\n${errors}")
endif()
file(TOUCH "${STAMP}")
