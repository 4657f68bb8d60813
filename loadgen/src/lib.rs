//! Seed generation and the open-model, arrival-rate load generator (not built yet).
