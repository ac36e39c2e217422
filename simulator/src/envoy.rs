//! Placeholder: the Envoy launcher is being written.
