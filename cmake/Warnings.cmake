# jr_warnings: an interface target carrying the project's warning flags.
add_library(jr_warnings INTERFACE)
target_compile_options(jr_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wpointer-arith -Wformat=2 -Wno-unused-parameter)
if(JR_WERROR)
  target_compile_options(jr_warnings INTERFACE -Werror)
endif()
