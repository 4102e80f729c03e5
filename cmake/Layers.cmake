# jr_layer(NAME FOLDER DEPENDENCY...): one layer of the program (docs/design.md, "Layers"):
# a static library of FOLDER's .c files (main.c aside), whose folder is on the include path
# of the layer itself and of the layers that link it, and of no other. A layer links only
# the layers below it, so an include that runs the wrong way does not compile: the header
# is not found.
function(jr_layer name dir)
  file(GLOB srcs CONFIGURE_DEPENDS ${dir}/*.c)
  list(FILTER srcs EXCLUDE REGEX "/main\\.c$")
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${dir})
  target_link_libraries(${name} PRIVATE jr_warnings PUBLIC ${ARGN})
endfunction()
