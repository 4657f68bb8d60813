# The pinned Keycloak: the version of org.keycloak:keycloak-quarkus-dist and the SHA-256 of its
# tar.gz on Maven Central (read by install.sh and start.sh).
KEYCLOAK_VERSION=26.5.6
KEYCLOAK_SHA256=fa3dd5df90b9ac006712c2f0991be4e8a6cb30ac538e0439ce2f45fc40f4c692
MAVEN_DEPENDENCY_PLUGIN_VERSION=3.8.1
