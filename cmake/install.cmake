# What `cmake --install` lays out besides the binaries (src/cli, src/sim) and the systemd
# integration (systemd/): the documentation, the examples, and the man pages and bash completion
# where the build makes them. The Debian package (debian/) is built from exactly this tree.

install(FILES README.md docs/operations.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The example fleet and its demo-only secrets (examples/secrets/README.md says so), the annotated
# config for the simulator, the Grafana dashboard and the Prometheus rules; and a pristine copy
# of the production config, to start each tenant's /etc/thingsync/TENANT.yaml from.
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES systemd/thingsync.conf.example
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples RENAME thingsync.yaml)

# Man pages and bash completion: docs/ and completions/ install them.
