# Helpers that turn Google's published API definitions into C with protoc-c.
#
# The .proto files are not kept in this repository. They come from the npm
# package google-proto-files, fetched at configure time with `npm pack` and
# checked against a sha256 kept in the repository (the way google-cloud-cpp
# downloads googleapis). Three steps, all under the build tree:
#
#   jr_npm_tarball()     find or fetch the pinned tarball and verify it
#   jr_protos_stage()    walk the imports of a few root files, extract exactly
#                        that closure from the tarball, and copy it to a staging
#                        tree (google/protobuf/* comes from the system include
#                        dir); proto3 `optional` is removed on the way, because
#                        protobuf-c 1.4.1 rejects it. Dropping the keyword keeps
#                        field number and wire type, only presence tracking goes.
#   jr_protos_generate() one protoc-c run at build time over the staged files
#
# Configure-time work is cheap on a rerun: the tarball is hashed (~9 MB), files
# already extracted are reused, and staged files are rewritten only when their
# content changes, so nothing is regenerated needlessly.

find_program(JR_PROTOC_C protoc-c DOC "protoc-c, the protobuf-c code generator")
find_program(JR_NPM npm DOC "npm, used to fetch the google-proto-files tarball")

# jr_npm_tarball(CHECKSUM_FILE <file> DOWNLOAD_DIR <dir> [OVERRIDE <tgz>]
#                OUT_TARBALL <var> OUT_SHA256 <var> OUT_VERSION <var>)
# CHECKSUM_FILE holds one sha256sum line "<sha256>  <name>-<version>.tgz"; it
# pins both the package version and its content. OVERRIDE, when not empty, is a
# local copy to use instead of the registry. Otherwise a tarball already in
# DOWNLOAD_DIR is reused, or `npm pack <name>@<version>` fetches one there.
# Any tarball whose sha256 differs from the pinned one stops the configure.
function(jr_npm_tarball)
  cmake_parse_arguments(PARSE_ARGV 0 A ""
    "CHECKSUM_FILE;DOWNLOAD_DIR;OVERRIDE;OUT_TARBALL;OUT_SHA256;OUT_VERSION" "")
  file(STRINGS "${A_CHECKSUM_FILE}" lines REGEX "^[0-9a-fA-F]+[ \t]")
  list(GET lines 0 line)
  if(NOT line MATCHES "^([0-9a-fA-F]+)[ \t]+\\*?([^ \t]+)[ \t]*$")
    message(FATAL_ERROR "${A_CHECKSUM_FILE}: expected a line '<sha256>  <name>-<version>.tgz'")
  endif()
  string(TOLOWER "${CMAKE_MATCH_1}" sha)
  set(file_name "${CMAKE_MATCH_2}")
  string(LENGTH "${sha}" sha_len)
  if(NOT sha_len EQUAL 64 OR NOT file_name MATCHES "^(.+)-([0-9]+\\.[0-9]+\\.[0-9]+[^/]*)\\.tgz$")
    message(FATAL_ERROR "${A_CHECKSUM_FILE}: expected a line '<sha256>  <name>-<version>.tgz'")
  endif()
  set(pkg "${CMAKE_MATCH_1}")
  set(version "${CMAKE_MATCH_2}")
  set(spec "${pkg}@${version}")
  set(pin "sha256 ${sha} (pinned in ${A_CHECKSUM_FILE})")

  if(A_OVERRIDE)
    set(tgz "${A_OVERRIDE}")
    if(NOT EXISTS "${tgz}")
      message(FATAL_ERROR "JR_PROTO_TARBALL=${tgz} does not exist. Point it at a copy of "
        "${file_name} (`npm pack ${spec}`), or unset it to fetch one with npm.")
    endif()
    file(SHA256 "${tgz}" actual)
    if(NOT actual STREQUAL sha)
      message(FATAL_ERROR "JR_PROTO_TARBALL=${tgz} has sha256 ${actual}, expected ${pin}. "
        "It is not ${file_name} as published on the npm registry, or it is damaged.")
    endif()
    message(STATUS "${pkg}: using ${tgz} (sha256 verified)")
  else()
    set(tgz "${A_DOWNLOAD_DIR}/${file_name}")
    if(EXISTS "${tgz}")
      file(SHA256 "${tgz}" actual)
      if(NOT actual STREQUAL sha)
        message(WARNING "${tgz} has sha256 ${actual}, expected ${pin}; fetching it again")
        file(REMOVE "${tgz}")
      endif()
    endif()
    if(NOT EXISTS "${tgz}")
      _jr_npm_pack("${spec}" "${file_name}" "${A_DOWNLOAD_DIR}" fetched)
      file(SHA256 "${fetched}" actual)
      if(NOT actual STREQUAL sha)
        file(RENAME "${fetched}" "${tgz}.rejected")
        message(FATAL_ERROR "`npm pack ${spec}` gave a tarball with sha256 ${actual}, "
          "expected ${pin}. Refusing to build from it (kept as ${tgz}.rejected). If the "
          "registry really changed, check the new tarball and update the checksum file.")
      endif()
      file(RENAME "${fetched}" "${tgz}")
      file(REMOVE_RECURSE "${A_DOWNLOAD_DIR}/npm-pack")
      message(STATUS "${pkg}: fetched ${file_name} (sha256 verified)")
    else()
      message(STATUS "${pkg}: reusing ${tgz} (sha256 verified)")
    endif()
  endif()
  set(${A_OUT_TARBALL} "${tgz}" PARENT_SCOPE)
  set(${A_OUT_SHA256} "${sha}" PARENT_SCOPE)
  set(${A_OUT_VERSION} "${version}" PARENT_SCOPE)
endfunction()

# _jr_npm_pack(<spec> <file_name> <dir> <out_var>): `npm pack <spec>` into a
# scratch folder of <dir>; sets <out_var> to the tarball it wrote. When npm
# fails, what it printed (stderr, then stdout; its last 4000 characters) is
# part of the error: npm's own reason (no such version, no network, a proxy or
# certificate problem) and the path of its debug log. `--loglevel=error` rather
# than `--silent`, which would keep npm from printing its errors at all.
function(_jr_npm_pack spec file_name dir out_var)
  if(NOT JR_NPM)
    message(FATAL_ERROR "npm is needed to fetch ${spec} (scripts/deps.sh installs it). "
      "Or set JR_PROTO_TARBALL (cache or environment variable) to a local copy of ${file_name}.")
  endif()
  set(scratch "${dir}/npm-pack")
  file(REMOVE_RECURSE "${scratch}")
  file(MAKE_DIRECTORY "${scratch}")
  message(STATUS "Fetching ${spec} with npm pack")
  set(cmd "${JR_NPM}" pack "${spec}" --ignore-scripts --loglevel=error)
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -E env
      npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
      ${cmd}
    WORKING_DIRECTORY "${scratch}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT EXISTS "${scratch}/${file_name}")
    if(rc EQUAL 0)
      set(what "exited 0 but wrote no ${file_name}")
    else()
      set(what "failed (exit status: ${rc})")
    endif()
    string(STRIP "${err}\n${out}" said)
    string(LENGTH "${said}" len)
    if(len GREATER 4000)
      math(EXPR from "${len} - 4000")
      string(SUBSTRING "${said}" ${from} -1 said)
      set(said "[...]${said}")
    endif()
    if(said STREQUAL "")
      set(said "(npm printed nothing)")
    endif()
    # indented: CMake shows indented lines as they are, instead of reflowing them
    string(REPLACE "\n" "\n    " said "${said}")
    string(REPLACE ";" " " shown "${cmd}")
    message(FATAL_ERROR "`npm pack ${spec}` ${what}. npm said:\n"
      "    ${said}\n"
      "The command, run in ${scratch}:\n"
      "    ${shown}\n"
      "Check access to the npm registry "
      "(proxy: npm_config_proxy / npm_config_https_proxy), or set JR_PROTO_TARBALL to a local "
      "copy of ${file_name}.")
  endif()
  set(${out_var} "${scratch}/${file_name}" PARENT_SCOPE)
endfunction()

# jr_protos_stage(TARBALL <tgz> SHA256 <sha> EXTRACT_DIR <dir> STAGE_DIR <dir>
#                 SYSTEM_DIR <dir> ROOTS <google/...proto>... OUT_FILES <var>)
# Collects ROOTS and everything they import, transitively. google/protobuf/*
# is read from SYSTEM_DIR (it must match the protobuf-c runtime and protoc);
# every other file is extracted from TARBALL (its package/ folder) into
# EXTRACT_DIR. Each file is copied to STAGE_DIR under its import path, with the
# `optional` label removed from proto3 files; proto2 files are copied as they
# are. OUT_FILES receives the import paths of the closure, sorted.
function(jr_protos_stage)
  cmake_parse_arguments(PARSE_ARGV 0 A ""
    "TARBALL;SHA256;EXTRACT_DIR;STAGE_DIR;SYSTEM_DIR;OUT_FILES" "ROOTS")
  # The extraction folder belongs to one tarball content.
  set(stamp "${A_EXTRACT_DIR}/.sha256")
  set(old_sha "")
  if(EXISTS "${stamp}")
    file(READ "${stamp}" old_sha)
  endif()
  if(NOT old_sha STREQUAL A_SHA256)
    file(REMOVE_RECURSE "${A_EXTRACT_DIR}")
    file(MAKE_DIRECTORY "${A_EXTRACT_DIR}")
    file(WRITE "${stamp}" "${A_SHA256}")
  endif()

  set(queue ${A_ROOTS})
  set(seen ${A_ROOTS})
  set(stripped "")
  set(n_system 0)
  while(queue)
    _jr_protos_extract("${A_TARBALL}" "${A_EXTRACT_DIR}" "${queue}")
    set(next "")
    foreach(f IN LISTS queue)
      if(f MATCHES "^google/protobuf/")
        set(src "${A_SYSTEM_DIR}/${f}")
        math(EXPR n_system "${n_system} + 1")
      else()
        set(src "${A_EXTRACT_DIR}/package/${f}")
      endif()
      if(NOT EXISTS "${src}")
        set(why "a root")
        if(DEFINED "_jr_by_${f}")
          set(why "imported by ${_jr_by_${f}}")
        endif()
        message(FATAL_ERROR "${f} (${why}) is in neither ${A_TARBALL} nor ${A_SYSTEM_DIR}")
      endif()
      _jr_protos_copy("${src}" "${A_STAGE_DIR}/${f}" was_stripped)
      if(was_stripped)
        get_filename_component(short "${f}" NAME)
        list(APPEND stripped "${short}")
      endif()
      file(STRINGS "${src}" import_lines REGEX "^[ \t]*import[ \t]")
      foreach(line IN LISTS import_lines)
        if(line MATCHES "^[ \t]*import[ \t]+(public[ \t]+|weak[ \t]+)?\"([^\"]+)\"")
          set(imp "${CMAKE_MATCH_2}")
          if(NOT imp IN_LIST seen)
            list(APPEND seen "${imp}")
            list(APPEND next "${imp}")
            set("_jr_by_${imp}" "${f}")
          endif()
        endif()
      endforeach()
    endforeach()
    set(queue ${next})
  endwhile()

  list(SORT seen)
  list(LENGTH seen n)
  list(JOIN stripped ", " stripped_text)
  message(STATUS "Google protos: ${n} files (${n_system} from ${A_SYSTEM_DIR}); "
    "proto3 'optional' removed in: ${stripped_text}")
  set(${A_OUT_FILES} ${seen} PARENT_SCOPE)
endfunction()

# _jr_protos_extract(<tgz> <dir> <files>): extracts package/<f> into <dir> for
# each non-system f in <files> not extracted yet, in one pass over the tarball.
function(_jr_protos_extract tgz dir files)
  set(members "")
  foreach(f IN LISTS files)
    if(NOT f MATCHES "^google/protobuf/" AND NOT EXISTS "${dir}/package/${f}")
      list(APPEND members "package/${f}")
    endif()
  endforeach()
  if(members)
    # A member missing from the archive is reported by the caller, by name.
    execute_process(COMMAND "${CMAKE_COMMAND}" -E tar xzf "${tgz}" ${members}
      WORKING_DIRECTORY "${dir}" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  endif()
endfunction()

# _jr_protos_copy(<src> <dst> <out_stripped>): copies one .proto, dropping the
# proto3 `optional` label; rewrites <dst> only when its content changes.
# <out_stripped> is set to TRUE when a label was removed.
function(_jr_protos_copy src dst out_stripped)
  file(READ "${src}" text)
  set(was FALSE)
  if(text MATCHES "(^|\n)[ \t]*syntax[ \t]*=[ \t]*[\"']proto3[\"']")
    string(REGEX REPLACE "\n([ \t]*)optional[ \t]+" "\n\\1" new_text "${text}")
    if(NOT new_text STREQUAL text)
      set(was TRUE)
      set(text "${new_text}")
    endif()
  endif()
  set(old "")
  if(EXISTS "${dst}")
    file(READ "${dst}" old)
  endif()
  if(NOT old STREQUAL text)
    file(WRITE "${dst}" "${text}")
  endif()
  set(${out_stripped} ${was} PARENT_SCOPE)
endfunction()

# jr_protos_generate(STAGE_DIR <dir> GEN_DIR <dir> FILES <import paths>...
#                    OUT_SOURCES <var> OUT_HEADERS <var>)
# Adds one build step running protoc-c over FILES (relative to STAGE_DIR) and
# writing <GEN_DIR>/<path>.pb-c.{c,h}; returns the generated file names.
function(jr_protos_generate)
  cmake_parse_arguments(PARSE_ARGV 0 A "" "STAGE_DIR;GEN_DIR;OUT_SOURCES;OUT_HEADERS" "FILES")
  if(NOT JR_PROTOC_C)
    message(FATAL_ERROR "protoc-c not found (Debian package protobuf-c-compiler; see scripts/deps.sh)")
  endif()
  set(srcs "")
  set(hdrs "")
  set(inputs "")
  foreach(f IN LISTS A_FILES)
    string(REGEX REPLACE "\\.proto$" "" base "${f}")
    list(APPEND srcs "${A_GEN_DIR}/${base}.pb-c.c")
    list(APPEND hdrs "${A_GEN_DIR}/${base}.pb-c.h")
    list(APPEND inputs "${A_STAGE_DIR}/${f}")
  endforeach()
  list(LENGTH A_FILES n)
  add_custom_command(
    OUTPUT ${srcs} ${hdrs}
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${A_GEN_DIR}"
    COMMAND "${JR_PROTOC_C}" "--c_out=${A_GEN_DIR}" "--proto_path=${A_STAGE_DIR}" ${A_FILES}
    DEPENDS ${inputs} "${JR_PROTOC_C}"
    WORKING_DIRECTORY "${A_STAGE_DIR}"
    COMMENT "protoc-c: generating C for ${n} Google .proto files"
    VERBATIM)
  set(${A_OUT_SOURCES} ${srcs} PARENT_SCOPE)
  set(${A_OUT_HEADERS} ${hdrs} PARENT_SCOPE)
endfunction()
