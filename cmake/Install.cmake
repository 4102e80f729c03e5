# Install rules (docs/install.md): `cmake --install build [--prefix P]`, `make install`, and
# the Debian package (cmake/Package.cmake) all go through them.
#
#   <prefix>/bin/jobrelay                          the program
#   <sysconf>/jobrelay/jobrelay.yaml               examples/jobrelay.yaml, to edit (a conffile
#                                                  in the package)
#   <unitdir>/jobrelay-pull.service                deploy/systemd/jobrelay-pull.service, its
#                                                  ExecStart and config paths made <prefix>'s
#
# <sysconf> and <unitdir> follow the prefix given at install time (so `--prefix` and CPack's
# /usr both get the right ones): prefix /usr gives /etc and /lib/systemd/system (Debian 12's
# systemd.pc), any other prefix P gives P/etc and P/lib/systemd/system (a unit directory
# systemd also reads for /usr/local). An absolute CMAKE_INSTALL_SYSCONFDIR, or
# JR_SYSTEMD_UNITDIR, set at configure time wins. DESTDIR is honoured by all of them.
#
# The man page and the shell completions are installed by cmake/CliDocs.cmake.
include(GNUInstallDirs)

set(JR_SYSTEMD_UNITDIR "" CACHE PATH
  "Where the systemd unit goes (empty: /lib/systemd/system for prefix /usr, else <prefix>/lib/systemd/system)")

install(TARGETS jobrelay RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The config and the unit: their places depend on the prefix used at install time, so they
# are installed by code that runs then. file(INSTALL) adds $DESTDIR and records the files in
# install_manifest.txt as the generated rules do.
set(_jr_unit_src ${PROJECT_SOURCE_DIR}/deploy/systemd/jobrelay-pull.service)
set(_jr_config_src ${PROJECT_SOURCE_DIR}/examples/jobrelay.yaml)
set(_jr_sysconf "")
if(IS_ABSOLUTE "${CMAKE_INSTALL_SYSCONFDIR}")
  set(_jr_sysconf "${CMAKE_INSTALL_SYSCONFDIR}")
endif()
install(CODE "
  set(_jr_prefix \"\${CMAKE_INSTALL_PREFIX}\")
  string(REGEX REPLACE \"/+$\" \"\" _jr_prefix \"\${_jr_prefix}\")
  if(\"${_jr_sysconf}\" STREQUAL \"\")
    if(_jr_prefix STREQUAL \"/usr\" OR _jr_prefix STREQUAL \"\")
      set(_jr_etc /etc)
    else()
      set(_jr_etc \"\${_jr_prefix}/etc\")
    endif()
  else()
    set(_jr_etc \"${_jr_sysconf}\")
  endif()
  if(\"${JR_SYSTEMD_UNITDIR}\" STREQUAL \"\")
    if(_jr_prefix STREQUAL \"/usr\" OR _jr_prefix STREQUAL \"\")
      set(_jr_unitdir /lib/systemd/system)
    else()
      set(_jr_unitdir \"\${_jr_prefix}/lib/systemd/system\")
    endif()
  else()
    set(_jr_unitdir \"${JR_SYSTEMD_UNITDIR}\")
  endif()
  set(_jr_bin \"\${_jr_prefix}/${CMAKE_INSTALL_BINDIR}/jobrelay\")

  file(INSTALL DESTINATION \"\${_jr_etc}/jobrelay\" TYPE FILE
    PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
    FILES \"${_jr_config_src}\" RENAME jobrelay.yaml)

  file(READ \"${_jr_unit_src}\" _jr_unit)
  string(REPLACE \"/usr/bin/jobrelay\" \"\${_jr_bin}\" _jr_unit \"\${_jr_unit}\")
  string(REPLACE \"/etc/jobrelay/\" \"\${_jr_etc}/jobrelay/\" _jr_unit \"\${_jr_unit}\")
  string(MD5 _jr_key \"\${_jr_bin} \${_jr_etc}\")
  set(_jr_unit_out \"${CMAKE_BINARY_DIR}/install/\${_jr_key}/jobrelay-pull.service\")
  # written whole, then renamed: two installs at once (a test and cpack) never read half of it
  string(RANDOM LENGTH 8 _jr_tmp)
  file(WRITE \"\${_jr_unit_out}.\${_jr_tmp}\" \"\${_jr_unit}\")
  file(RENAME \"\${_jr_unit_out}.\${_jr_tmp}\" \"\${_jr_unit_out}\")
  file(INSTALL DESTINATION \"\${_jr_unitdir}\" TYPE FILE
    PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
    FILES \"\${_jr_unit_out}\")
")
