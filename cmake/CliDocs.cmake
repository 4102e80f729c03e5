# CliDocs.cmake — the man page and the bash and zsh completions, generated at
# build time by the jobrelay binary from its command table (src/cmd/commands.c),
# and where they are installed. Included from the top CMakeLists.txt after src/.
include(GNUInstallDirs)

if(CMAKE_CROSSCOMPILING)
  message(STATUS "cross-compiling: the man page and completions are not generated")
  return()
endif()

set(JR_MAN_PAGE ${CMAKE_BINARY_DIR}/man/jobrelay.1)
set(JR_BASH_COMPLETION ${CMAKE_BINARY_DIR}/completion/jobrelay)
set(JR_ZSH_COMPLETION ${CMAKE_BINARY_DIR}/completion/_jobrelay)

# jr_cli_doc(OUTPUT ARGS...): OUTPUT is what `jobrelay ARGS...` prints
function(jr_cli_doc out)
  get_filename_component(dir ${out} DIRECTORY)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    COMMAND sh -c "\"$0\" \"$@\" > \"${out}.tmp\" && mv \"${out}.tmp\" \"${out}\"" $<TARGET_FILE:jobrelay> ${ARGN}
    DEPENDS jobrelay
    COMMENT "Generating ${out}"
    VERBATIM)
endfunction()

jr_cli_doc(${JR_MAN_PAGE} help --man)
jr_cli_doc(${JR_BASH_COMPLETION} completion bash)
jr_cli_doc(${JR_ZSH_COMPLETION} completion zsh)
add_custom_target(cli_docs ALL DEPENDS ${JR_MAN_PAGE} ${JR_BASH_COMPLETION} ${JR_ZSH_COMPLETION})

install(FILES ${JR_MAN_PAGE} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${JR_BASH_COMPLETION} DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES ${JR_ZSH_COMPLETION} DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
