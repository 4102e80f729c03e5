# The Debian package, made with CPack (docs/install.md): `make package`, or `cpack` in the
# build directory, gives jobrelay_<version>_<arch>.deb there.
#
# It holds what cmake/Install.cmake installs, with prefix /usr (so /usr/bin/jobrelay,
# /etc/jobrelay/jobrelay.yaml as a conffile, /lib/systemd/system/jobrelay-pull.service), the
# binary stripped. Depends comes from the binary through dpkg-shlibdeps (every library it is
# linked to), plus ca-certificates for TLS to Google's APIs. The maintainer scripts
# (deploy/debian/) only tell systemd about the unit, and stop it on removal; nothing is
# enabled or started.
#
# JR_PACKAGE_MAINTAINER names the Maintainer field.
set(JR_PACKAGE_MAINTAINER "jobrelay maintainers <jobrelay@example.com>" CACHE STRING
  "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME jobrelay)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR jobrelay)
set(CPACK_PACKAGE_CONTACT "${JR_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "turns cloud events into Cloud Run job executions")
# installed with DESTDIR and prefix /usr (whatever the build's CMAKE_INSTALL_PREFIX), so that
# /etc and /lib/systemd/system land in the package
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_FILE_NAME "jobrelay")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${JR_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "jobrelay decodes cloud events (Pub/Sub messages, Eventarc and Pub/Sub push
deliveries, CloudEvents from files) into CloudEvents, matches them against
the routes of its config, and starts each route's Cloud Run job through the
Cloud Run Admin API with overrides rendered from the event; failures are
retried or dead-lettered.
.
This package holds the jobrelay program, its example configuration in
/etc/jobrelay, and the systemd unit jobrelay-pull.service for the Pub/Sub
StreamingPull worker (not enabled).")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(_jr_deb_conffiles ${CMAKE_BINARY_DIR}/package/conffiles)
file(WRITE ${_jr_deb_conffiles} "/etc/jobrelay/jobrelay.yaml\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${_jr_deb_conffiles}
  ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
  ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
  ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)

include(CPack)
