//! Calico resources (serde types) and the Calico selector language.
