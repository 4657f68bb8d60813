//! Criterion microbenchmarks of mock-idp token signing, validation and whole token requests.
