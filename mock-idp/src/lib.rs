//! mock-idp: a spec-faithful OpenID Connect provider to load-test against.
